"""The readiness view: Redis, Postgres and the workers checked in the background, served from memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["HealthReading", "HealthView"]


@dataclass(frozen=True)
class HealthReading:
    """One round of checks: what each dependency said, what is wrong, and when it was asked."""

    checks: dict[str, object]
    problems: list[str]
    checked_at: float = field(default_factory=time.time)

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.checked_at)

    def checked_at_iso(self) -> str:
        return datetime.fromtimestamp(self.checked_at, UTC).isoformat()


class HealthView:
    """The latest HealthReading, refreshed every `interval_s` by a thread of this process.

    A worker broadcast waits out its whole timeout, so asking the workers during a request
    would hold a gunicorn worker for it and let anonymous probes tie up the API. The thread
    starts on the first read (after gunicorn forks, in the process that serves) and stops
    once nobody has read the view for `idle_after` intervals, so an unused view costs nothing.
    """

    def __init__(self, check: Callable[[], HealthReading], interval_s: float, idle_after: int = 10) -> None:
        self._check = check
        self.interval_s = interval_s
        self._idle_s = interval_s * idle_after
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._reading: HealthReading | None = None
        self._last_read = time.monotonic()
        self._thread: threading.Thread | None = None

    def read(self, first_wait_s: float) -> HealthReading | None:
        """The latest reading; the very first read waits up to `first_wait_s` for one (None if none came)."""
        self._last_read = time.monotonic()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._refresh_while_read, name="health-view", daemon=True)
                self._thread.start()
        self._first.wait(first_wait_s)
        return self._reading

    def stale(self, reading: HealthReading) -> bool:
        """Older than three refreshes: the refresher itself is stuck, which is a problem of its own."""
        return reading.age_s() > 3 * self.interval_s

    def _refresh_while_read(self) -> None:
        while time.monotonic() - self._last_read < self._idle_s:
            started = time.monotonic()
            self._reading = self._check()
            self._first.set()
            time.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))
