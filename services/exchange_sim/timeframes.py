"""Bar intervals: bar index <-> open time, aligned as the exchanges align them (UTC)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "INTERVALS",
    "is_interval",
    "nominal_ms",
    "bar_index_at",
    "first_bar_at_or_after",
    "bar_open_ms",
]

_SECOND, _MINUTE, _HOUR, _DAY = 1_000, 60_000, 3_600_000, 86_400_000

# Every interval Binance spot serves (and ccxt's binance.timeframes maps 1:1 onto).
# Fixed-length intervals are multiples of their length since the Unix epoch;
# weeks start on Monday (the epoch was a Thursday, hence the 4-day offset);
# months are calendar months.
_FIXED = {
    "1s": _SECOND, "1m": _MINUTE, "3m": 3 * _MINUTE, "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE, "30m": 30 * _MINUTE, "1h": _HOUR, "2h": 2 * _HOUR,
    "4h": 4 * _HOUR, "6h": 6 * _HOUR, "8h": 8 * _HOUR, "12h": 12 * _HOUR,
    "1d": _DAY, "3d": 3 * _DAY, "1w": 7 * _DAY,
}
_OFFSET = {"1w": 4 * _DAY}
_MONTH = "1M"
INTERVALS = (*_FIXED, _MONTH)  # Binance's, which its klines endpoint serves
# Kraken's 21600-minute bar has no Binance counterpart; like the others it is aligned to the epoch.
_LENGTH = {**_FIXED, "15d": 15 * _DAY}


def is_interval(interval: str) -> bool:
    """Whether Binance serves `interval` (Kraken's own set is kraken.INTERVALS)."""
    return interval in _FIXED or interval == _MONTH


def nominal_ms(interval: str) -> int:
    """Bar length; a month counts as 30 days (used only to scale volatility and volume)."""
    return 30 * _DAY if interval == _MONTH else _LENGTH[interval]


def bar_index_at(interval: str, ts_ms: int) -> int:
    """Index of the bar whose open <= ts_ms < next open (bar 0 opens at/after the Unix epoch)."""
    if interval == _MONTH:
        month = np.datetime64(int(ts_ms), "ms").astype("datetime64[M]")
        return int(month.astype(np.int64))
    return (int(ts_ms) - _OFFSET.get(interval, 0)) // _LENGTH[interval]


def first_bar_at_or_after(interval: str, ts_ms: int) -> int:
    """Index of the first bar opening at or after ts_ms."""
    index = bar_index_at(interval, ts_ms)
    return index if bar_open_ms(interval, index) >= ts_ms else index + 1


def bar_open_ms(interval: str, index):
    """Open time (ms) of bar `index`; accepts an int or an int64 array."""
    if interval == _MONTH:
        months = np.asarray(index, dtype=np.int64).astype("datetime64[M]")
        opens = months.astype("datetime64[ms]").astype(np.int64)
        return int(opens) if np.ndim(opens) == 0 else opens
    if np.ndim(index):
        return np.asarray(index, dtype=np.int64) * _LENGTH[interval] + _OFFSET.get(interval, 0)
    return int(index) * _LENGTH[interval] + _OFFSET.get(interval, 0)
