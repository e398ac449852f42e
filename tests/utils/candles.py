"""Tiny builders for hand-made candle and indicator frames used in unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ["Bar", "bar", "closes", "frame", "indicators", "steady"]

Bar = tuple[float, float, float, float, float]

START = "2024-01-01T00:00:00Z"


def bar(o: float, h: float, l: float, c: float, volume: float = 1.0) -> Bar:
    """One candle; checks the OHLC are consistent so a test cannot build an impossible bar."""
    assert l <= min(o, c) <= max(o, c) <= h, f"impossible bar o={o} h={h} l={l} c={c}"
    return (float(o), float(h), float(l), float(c), float(volume))


def frame(bars: Iterable[Bar], start: str = START, freq: str = "1h") -> pd.DataFrame:
    """Candles in the pipeline's contract: UTC index `ts`, float64 open/high/low/close/volume."""
    rows = list(bars)
    index = pd.date_range(start, periods=len(rows), freq=freq, tz="UTC", name="ts")
    columns = ["open", "high", "low", "close", "volume"]
    return pd.DataFrame(np.array(rows, dtype="float64").reshape(len(rows), 5), index=index, columns=columns)


def steady(start: float, step: float, count: int) -> list[Bar]:
    """`count` plain bars moving by `step` each, opening at the previous close, with short wicks.

    Bodies are 2/3 of the range, so these bars form no doji, hammer or star on their own.
    """
    wick = abs(step) / 4
    bars, price = [], start
    for _ in range(count):
        close = price + step
        bars.append(bar(price, max(price, close) + wick, min(price, close) - wick, close))
        price = close
    return bars


def closes(values: Sequence[float], start: str = START, freq: str = "1h") -> pd.DataFrame:
    """Candles whose open, high, low and close are all the given close (for close-only rules)."""
    return frame([bar(v, v, v, v) for v in values], start=start, freq=freq)


def indicators(index: pd.Index, regime: Sequence[str | None] | None = None, **columns: Sequence[float]) -> pd.DataFrame:
    """An indicator frame on `index` with just the given float columns and, optionally, a regime column."""
    table = pd.DataFrame({name: np.asarray(values, dtype="float64") for name, values in columns.items()}, index=index)
    if regime is not None:
        table["regime"] = pd.Series(list(regime), index=index)
    return table
