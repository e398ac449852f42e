"""Builders that insert instruments, candles, signals and runs straight into the test database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

__all__ = ["add_instrument", "add_candles", "add_signal", "add_run", "hour"]

START = datetime(2024, 1, 1, tzinfo=UTC)


def hour(n: int) -> datetime:
    """The n-th hourly bar after 2024-01-01T00:00Z."""
    return START + timedelta(hours=n)


def add_instrument(engine: Engine, symbol: str = "BTC/USD", exchange: str = "kraken",
                   timeframes: tuple[str, ...] = ("1h",), active: bool = True) -> int:
    with engine.begin() as conn:
        return conn.execute(text("""INSERT INTO instruments (exchange, symbol, timeframes, active)
                                    VALUES (:e, :s, :tf, :a) RETURNING id"""),
                            {"e": exchange, "s": symbol, "tf": list(timeframes), "a": active}).scalar_one()


def add_candles(engine: Engine, instrument_id: int, count: int, timeframe: str = "1h", open_last: bool = False) -> None:
    """`count` hourly candles from 2024-01-01; close = 100 + bar number, so a test can tell bars apart."""
    rows = [{"i": instrument_id, "tf": timeframe, "ts": hour(n), "o": 100.0 + n, "h": 101.0 + n, "l": 99.0 + n,
             "c": 100.0 + n, "v": 10.0, "closed": not (open_last and n == count - 1)} for n in range(count)]
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO candles
                                    (instrument_id, timeframe, ts, open, high, low, close, volume, is_closed)
                             VALUES (:i, :tf, :ts, :o, :h, :l, :c, :v, :closed)"""), rows)


def add_signal(engine: Engine, instrument_id: int, ts: datetime, strategy: str = "rsi_mean_reversion",
               side: str = "buy", timeframe: str = "1h") -> None:
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO signals (instrument_id, timeframe, ts, strategy, side, strength, price, inputs)
                             VALUES (:i, :tf, :ts, :st, :side, 0.5, 123.5, CAST(:inputs AS jsonb))"""),
                     {"i": instrument_id, "tf": timeframe, "ts": ts, "st": strategy, "side": side,
                      "inputs": json.dumps({"rsi": 25.0})})


def add_run(engine: Engine, run_id: str, kind: str = "all", state: str = "SUCCESS", stages: dict | None = None,
            errors: list | None = None, created_at: datetime | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO pipeline_runs (id, kind, scope, state, stages, errors, created_at, started_at, finished_at)
            VALUES (:id, :kind, '{}', :state, CAST(:stages AS jsonb), CAST(:errors AS jsonb), :created, :created,
                    CASE WHEN :state IN ('SUCCESS', 'PARTIAL', 'FAILURE') THEN CAST(:created AS timestamptz) END)"""),
            {"id": run_id, "kind": kind, "state": state, "stages": json.dumps(stages or {}),
             "errors": json.dumps(errors or []), "created": created_at or START})
