"""Builders that write indicator values, patterns and levels through the indicator stage's own store functions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, text

from services.core.models import INDICATOR_COLUMNS
from services.indicators.analysis import refresh_levels, refresh_patterns, upsert_indicator_rows
from tests.integration.api.rows import START, hour

__all__ = ["indicator_value", "add_indicator_bars", "add_zigzag_candles", "detect_patterns", "detect_levels",
           "stored_rows"]

_WRITTEN = (*INDICATOR_COLUMNS, "regime", "is_closed")
_REGIMES = ("trend_up", "range", None)


def indicator_value(bar: int, column: str) -> float:
    """What add_indicator_bars stores in `column` at `bar`: distinct per cell, with bits a rounding would lose."""
    return bar + INDICATOR_COLUMNS.index(column) / 7


def add_indicator_bars(engine: Engine, instrument_id: int, count: int, timeframe: str = "1h",
                       open_last: bool = False, warmup: int = 0) -> None:
    """`count` hourly indicator rows from 2024-01-01; sma_slow is NaN (stored NULL) for the first `warmup` bars,
    and bar 1's atr is +Infinity, so null handling shows."""
    rows = []
    for n in range(count):
        values = {column: indicator_value(n, column) for column in INDICATOR_COLUMNS}
        if n < warmup:
            values["sma_slow"] = float("nan")
        if n == 1:
            values["atr"] = float("inf")
        rows.append((instrument_id, timeframe, hour(n), *values.values(), _REGIMES[n % 3],
                     not (open_last and n == count - 1)))
    with engine.begin() as conn:
        upsert_indicator_rows(conn, rows, _WRITTEN, scale=float(count))


def add_zigzag_candles(engine: Engine, instrument_id: int, count: int, timeframe: str = "1h") -> None:
    """Hourly candles swinging 100 → 110 → 100 every 8 bars, slowly rising: swing highs and lows to find levels in."""
    rows = []
    for n in range(count):
        phase = n % 8
        close = 100.0 + (phase if phase <= 4 else 8 - phase) * 2.5 + n * 0.01
        rows.append({"i": instrument_id, "tf": timeframe, "ts": START + timedelta(hours=n), "o": close - 0.5,
                     "h": close + 1.0, "l": close - 1.5, "c": close, "v": 10.0 + n})
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO candles
                                    (instrument_id, timeframe, ts, open, high, low, close, volume, is_closed)
                             VALUES (:i, :tf, :ts, :o, :h, :l, :c, :v, true)"""), rows)


def detect_patterns(engine: Engine, instrument_id: int, timeframe: str = "1h") -> dict:
    """The indicator stage's pattern step over the stored candles."""
    with engine.begin() as conn:
        return refresh_patterns(conn, instrument_id, timeframe)


def detect_levels(engine: Engine, instrument_id: int, timeframe: str = "1h", lookback_bars: int = 500) -> dict:
    """The indicator stage's level step over the stored candles."""
    with engine.begin() as conn:
        return refresh_levels(conn, instrument_id, timeframe, lookback_bars)


def stored_rows(engine: Engine, sql: str, **binds: object) -> list[dict]:
    """What a query returns, as dicts: the table's own view, to compare the API with."""
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(text(sql), binds).mappings()]
