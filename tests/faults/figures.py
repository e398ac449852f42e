"""What a fault scenario is measured by: expected candles and signals from the simulator, stored ones from Postgres."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, text

from services.indicators.engine import compute_indicators
from services.signals.rules import generate_signals
from tests.utils.ingest import reference_candles

__all__ = ["Expected", "Stored", "Row", "expected_figures", "stored_figures", "non_terminal_runs", "format_table"]

_OHLCV = ("open", "high", "low", "close", "volume")
TERMINAL_STATES = ("SUCCESS", "PARTIAL", "FAILURE", "CANCELLED")


@dataclass(frozen=True)
class Expected:
    """The simulator's candles for the run's range, and the signals the project's pure functions find in them."""

    candles: dict[tuple[str, int], tuple[float, ...]]  # (symbol, ts ms) → OHLCV
    signals: set[tuple[str, int, str, str]]  # (symbol, ts ms, strategy, side)

    def only(self, symbols: list[str]) -> Expected:
        """The expectations for some of the instruments."""
        return Expected({key: value for key, value in self.candles.items() if key[0] in symbols},
                        {key for key in self.signals if key[0] in symbols})


@dataclass(frozen=True)
class Stored:
    """What Postgres holds for the same instruments and timeframe, and how many rows share a key."""

    candles: dict[tuple[str, int], tuple[float, ...]]
    signals: set[tuple[str, int, str, str]]
    candle_duplicates: int
    signal_duplicates: int


def _frame(rows: list[list]) -> pd.DataFrame:
    frame = pd.DataFrame([row[1:6] for row in rows], columns=list(_OHLCV), dtype="float64",
                         index=pd.DatetimeIndex(pd.to_datetime([row[0] for row in rows], unit="ms", utc=True),
                                                name="ts"))
    return frame


def _expected_signals(symbol: str, rows: list[list], open_ts: int) -> set[tuple[str, int, str, str]]:
    """The signals the signals stage must store: every strategy over the closed bars' indicators."""
    candles = _frame(rows)
    indicators = compute_indicators(candles)
    closed = pd.Series(candles.index < pd.Timestamp(open_ts, unit="ms", tz="UTC"), index=candles.index)
    found = generate_signals(candles, indicators, closed_mask=closed)
    return {(symbol, int(ts.value // 1_000_000), strategy, side)
            for ts, strategy, side in found[["ts", "strategy", "side"]].itertuples(index=False)}


def expected_figures(sim_url: str, symbols: list[str], timeframe: str, since_ms: int, until_ms: int,
                     open_ts: int) -> Expected:
    """Read through the simulator's published port with a plain ccxt client, never from the system under test."""
    candles, signals = {}, set()
    for symbol in symbols:
        rows = reference_candles(sim_url, symbol, timeframe, since_ms, until_ms)
        candles.update({(symbol, row[0]): tuple(float(v) for v in row[1:6]) for row in rows})
        signals |= _expected_signals(symbol, rows, open_ts)
    return Expected(candles, signals)


def stored_figures(engine: Engine, symbols: list[str], timeframe: str) -> Stored:
    params = {"symbols": symbols, "tf": timeframe}
    with engine.connect() as conn:
        candles = conn.execute(text("""
            SELECT i.symbol, (extract(epoch FROM c.ts) * 1000)::bigint, c.open, c.high, c.low, c.close, c.volume
              FROM candles c JOIN instruments i ON i.id = c.instrument_id
             WHERE i.symbol = ANY(:symbols) AND c.timeframe = :tf"""), params).all()
        signals = conn.execute(text("""
            SELECT i.symbol, (extract(epoch FROM s.ts) * 1000)::bigint, s.strategy, s.side
              FROM signals s JOIN instruments i ON i.id = s.instrument_id
             WHERE i.symbol = ANY(:symbols) AND s.timeframe = :tf"""), params).all()
    candle_map = {(row[0], row[1]): tuple(row[2:]) for row in candles}
    # The natural keys are primary/unique keys today, so these stay 0 unless the schema loses them:
    # counted from the rows, not assumed from the schema.
    signal_keys = {(row[0], row[1], row[2]) for row in signals}
    return Stored(candle_map, {tuple(row) for row in signals}, len(candles) - len(candle_map),
                  len(signals) - len(signal_keys))


def non_terminal_runs(engine: Engine) -> list[tuple[str, str, str]]:
    """(id, kind, state) of every run not finished, across the whole stack's history."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT id, kind, state FROM pipeline_runs WHERE state <> ALL(:done) ORDER BY created_at"),
            {"done": list(TERMINAL_STATES)}).all()]


@dataclass
class Row:
    """One line of the figures table."""

    scenario: str
    done: str
    seconds: float | None = None
    candles: tuple[int, int, int] = (0, 0, 0)  # expected, stored, duplicated
    signals: tuple[int, int, int] = (0, 0, 0)
    non_terminal: int = 0
    passed: bool = False

    def measure(self, expected: Expected, stored: Stored, non_terminal: int) -> None:
        self.candles = (len(expected.candles), len(stored.candles), stored.candle_duplicates)
        self.signals = (len(expected.signals), len(stored.signals), stored.signal_duplicates)
        self.non_terminal = non_terminal


_HEADER = ("scenario", "what was done", "s to terminal", "candles exp/stored/dup", "signals exp/stored/dup",
           "non-terminal", "result")


def format_table(rows: list[Row]) -> list[str]:
    """The rows as a Markdown table, so the same lines go into docs/reliability.md."""
    cells = [_HEADER] + [(
        row.scenario, row.done, "-" if row.seconds is None else f"{row.seconds:.0f}",
        "/".join(map(str, row.candles)), "/".join(map(str, row.signals)), str(row.non_terminal),
        "pass" if row.passed else "FAIL") for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_HEADER))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |"
             for line in cells]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return lines
