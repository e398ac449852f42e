"""The simulator's clock: a settable, advanceable "now" that may also run with wall time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

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
    stack see new candles appear in real time.
    """

    def __init__(self, now_ms: int | None = None, rate: float = 0.0, wall=time.time):
        self._wall = wall
        self._lock = threading.Lock()
        self._rate = float(rate)
        self._set_at_wall = wall()
        self._set_to_ms = int(now_ms if now_ms is not None else self._set_at_wall * 1000)

    @property
    def rate(self) -> float:
        return self._rate

    def now_ms(self) -> int:
        with self._lock:
            return self._set_to_ms + int(self._rate * (self._wall() - self._set_at_wall) * 1000)

    def set(self, now_ms: int, rate: float | None = None) -> int:
        with self._lock:
            self._set_at_wall = self._wall()
            self._set_to_ms = int(now_ms)
            if rate is not None:
                self._rate = float(rate)
            return self._set_to_ms

    def advance(self, seconds: float) -> int:
        return self.set(self.now_ms() + round(seconds * 1000))

    def set_rate(self, rate: float) -> int:
        return self.set(self.now_ms(), rate)
