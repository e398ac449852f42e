"""The simulator's clock: a settable, advanceable "now" that may also run with wall time."""

from __future__ import annotations

import mmap
import time
from datetime import UTC, datetime

from .shared import SharedMemory

__all__ = ["SimClock", "parse_time_ms"]


def parse_time_ms(value: object) -> int:
    """Milliseconds since the epoch from an int/float (ms) or an ISO-8601 string (UTC if naive)."""
    if isinstance(value, bool):
        raise ValueError("a time must be ms since the epoch or an ISO-8601 string")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise ValueError(f"not a time: {value!r}")


class SimClock:
    """now = the set instant + rate * wall time elapsed since it was set.

    rate 0 (the default) freezes the clock, which is what tests want; rate 1 lets a demo
    stack see new candles appear in real time. The three numbers live in shared memory, so
    every process of a multi-process server keeps the same time and sees every change.
    """

    _STATE = "qdd"  # set to (ms), set at (wall seconds), rate

    def __init__(self, now_ms: int | None = None, rate: float = 0.0, wall=time.time):
        self._wall = wall
        self._memory = SharedMemory(mmap.PAGESIZE)
        set_at = wall()
        self._memory.pack(self._STATE, 0, int(now_ms if now_ms is not None else set_at * 1000), set_at,
                          float(rate))

    @property
    def rate(self) -> float:
        with self._memory.lock:
            return self._memory.unpack(self._STATE)[2]

    def now_ms(self) -> int:
        with self._memory.lock:
            set_to_ms, set_at_wall, rate = self._memory.unpack(self._STATE)
        return set_to_ms + int(rate * (self._wall() - set_at_wall) * 1000)

    def set(self, now_ms: int, rate: float | None = None) -> int:
        with self._memory.lock:
            old_rate = self._memory.unpack(self._STATE)[2]
            self._memory.pack(self._STATE, 0, int(now_ms), self._wall(), old_rate if rate is None else float(rate))
            return int(now_ms)

    def advance(self, seconds: float) -> int:
        # Read and write under one lock: two processes advancing at once must both count.
        with self._memory.lock:
            set_to_ms, set_at_wall, rate = self._memory.unpack(self._STATE)
            wall = self._wall()
            now = set_to_ms + int(rate * (wall - set_at_wall) * 1000) + round(seconds * 1000)
            self._memory.pack(self._STATE, 0, now, wall, rate)
            return now

    def set_rate(self, rate: float) -> int:
        with self._memory.lock:
            set_to_ms, set_at_wall, old_rate = self._memory.unpack(self._STATE)
            wall = self._wall()
            now = set_to_ms + int(old_rate * (wall - set_at_wall) * 1000)
            self._memory.pack(self._STATE, 0, now, wall, float(rate))
            return now
