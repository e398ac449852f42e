"""One request rate per exchange, shared by every worker process through Redis."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from services.core import keys

__all__ = ["SharedRateLimiter", "HORIZON_S", "MAX_SLOTS_PER_CALL", "MIN_LATENESS_S"]

# Reserve the next n free slots atomically (GCRA-style): the key holds the earliest
# time the next request may go; each caller pushes it n intervals further and
# sleeps until its own slots. Redis TIME is the one clock all processes share.
_RESERVE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local next_us = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_us < now_us then next_us = now_us end
local reserved_until = next_us + tonumber(ARGV[1]) * tonumber(ARGV[2])
-- Expire a second after the last reserved slot: an idle limiter leaves nothing behind.
redis.call('SET', KEYS[1], reserved_until, 'PX', math.floor((reserved_until - now_us) / 1000) + 1000)
return next_us - now_us
"""

# Slots one round trip may reserve for announced requests (`ahead`): at most this many,
# and never more than a second of the budget, so other processes are not pushed far back.
MAX_SLOTS_PER_CALL = 32
HORIZON_S = 1.0
# A reserved slot not taken by then is dropped, never used late: a late slot would put its
# request beside another process's. One interval is the lateness the one-slot path already
# has (wake-up after the sleep, the request's own latency); the floor keeps a high rate's
# microsecond slots usable by the batch's threads, at the cost of a burst of at most
# MIN_LATENESS_S x rate requests.
MIN_LATENESS_S = 0.05


class SharedRateLimiter:
    """Spaces requests to one exchange at `rate_per_s`, across processes and hosts.

    `acquire()` takes one slot. Inside `ahead(n)` (a batch about to make n requests from
    several threads) one Redis round trip reserves several consecutive slots, which this
    process's threads then take in order: the same spacing at a fraction of the round trips.
    """

    def __init__(self, client: redis.Redis, exchange: str, rate_per_s: float,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self._client = client
        self._key = keys.rate_limit(exchange)
        self._interval_us = max(1, int(1_000_000 / rate_per_s))
        self._interval_s = self._interval_us / 1_000_000
        self._lateness_s = max(self._interval_s, MIN_LATENESS_S)
        self._most_per_call = max(1, min(MAX_SLOTS_PER_CALL, int(HORIZON_S / self._interval_s)))
        self._script = client.register_script(_RESERVE)
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()  # reserved, not yet taken: local clock times, ascending
        self._announced = 0  # requests announced by `ahead` and not yet made
        self.round_trips = 0

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        with self._lock:
            slot = self._take()
            if self._announced:
                self._announced -= 1
        wait_s = max(0.0, slot - self._clock())
        if wait_s > 0:
            self._sleep(wait_s)
        return wait_s

    @contextmanager
    def ahead(self, requests: int) -> Iterator[None]:
        """Announce `requests` coming acquires (from any thread) so their slots are reserved together."""
        with self._lock:
            self._announced += max(0, requests)
        try:
            yield
        finally:
            # Whatever was announced and not made (a failed download, fewer retries) is taken back;
            # slots already reserved stay until taken or too late.
            with self._lock:
                self._announced -= min(max(0, requests), self._announced)

    def _take(self) -> float:
        """The next slot still in time, reserving more in one round trip if none is left (lock held)."""
        now = self._clock()
        while self._slots and self._slots[0] + self._lateness_s < now:
            self._slots.popleft()
        if not self._slots:
            self._reserve(max(1, min(self._announced, self._most_per_call)))
        return self._slots.popleft()

    def _reserve(self, count: int) -> None:
        wait_us = int(self._script(keys=[self._key], args=[self._interval_us, count]))
        self.round_trips += 1
        # Redis read its clock before the reply left: timing the slots from the reply's arrival
        # puts each one at or after its Redis time, never before.
        first = self._clock() + wait_us / 1_000_000
        self._slots.extend(first + k * self._interval_s for k in range(count))
