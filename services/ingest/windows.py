"""Fetch-window arithmetic: pure functions over millisecond timestamps."""

from __future__ import annotations

__all__ = ["align_down", "plan_windows", "expected_bars", "is_closed"]


def align_down(ts_ms: int, timeframe_ms: int) -> int:
    """The open time of the bar that contains `ts_ms`."""
    return ts_ms - ts_ms % timeframe_ms


def plan_windows(since_ms: int, until_ms: int, timeframe_ms: int, max_candles: int) -> list[tuple[int, int]]:
    """Split [since, until) into half-open windows of at most `max_candles` bars, bar-aligned."""
    if max_candles <= 0:
        raise ValueError("max_candles must be positive")
    start = align_down(since_ms, timeframe_ms)
    if since_ms % timeframe_ms:
        start += timeframe_ms  # a partial first bar is not inside the requested range
    step = timeframe_ms * max_candles
    windows = []
    while start < until_ms:
        end = min(start + step, until_ms)
        windows.append((start, end))
        start = end
    return windows


def expected_bars(window_start: int, window_end: int, timeframe_ms: int, now_ms: int) -> int:
    """How many bars an exchange with full history should return for the window (open bar included)."""
    last_open = min(window_end - 1, now_ms)
    if last_open < window_start:
        return 0
    return (align_down(last_open, timeframe_ms) - window_start) // timeframe_ms + 1


def is_closed(ts_ms: int, timeframe_ms: int, now_ms: int) -> bool:
    """A bar is closed once the clock has reached its end."""
    return ts_ms + timeframe_ms <= now_ms
