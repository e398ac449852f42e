"""Fetch-window arithmetic: pure functions over millisecond timestamps and a Timeframe."""

from __future__ import annotations

from services.core.timeframe import Timeframe

__all__ = ["align_down", "plan_windows", "expected_bars", "is_closed"]


def align_down(ts_ms: int, tf: Timeframe) -> int:
    """The open time of the bar that contains `ts_ms`."""
    return ts_ms - ts_ms % tf.ms


def plan_windows(since_ms: int, until_ms: int, tf: Timeframe, max_candles: int) -> list[tuple[int, int]]:
    """Split [since, until) into half-open windows of at most `max_candles` bars, bar-aligned."""
    bar_ms = tf.ms
    if max_candles <= 0:
        raise ValueError("max_candles must be positive")
    start = since_ms - since_ms % bar_ms
    if since_ms % bar_ms:
        start += bar_ms  # a partial first bar is not inside the requested range
    step = bar_ms * max_candles
    windows = []
    while start < until_ms:
        end = min(start + step, until_ms)
        windows.append((start, end))
        start = end
    return windows


def expected_bars(window_start: int, window_end: int, tf: Timeframe, now_ms: int) -> int:
    """How many bars an exchange with full history should return for the window (open bar included)."""
    last_open = min(window_end - 1, now_ms)
    if last_open < window_start:
        return 0
    return (align_down(last_open, tf) - window_start) // tf.ms + 1


def is_closed(ts_ms: int, tf: Timeframe, now_ms: int) -> bool:
    """A bar is closed once the clock has reached its end."""
    return ts_ms + tf.ms <= now_ms
