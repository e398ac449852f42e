"""One request rate per exchange, shared by every worker process through Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from services.core import keys

__all__ = ["SharedRateLimiter"]

# Reserve the next free slot atomically (GCRA-style): the key holds the earliest
# time the next request may go; each caller pushes it one interval further and
# sleeps until its own slot. Redis TIME is the one clock all processes share.
_RESERVE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local next_us = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_us < now_us then next_us = now_us end
local reserved_until = next_us + tonumber(ARGV[1])
-- Expire a second after the last reserved slot: an idle limiter leaves nothing behind.
redis.call('SET', KEYS[1], reserved_until, 'PX', math.floor((reserved_until - now_us) / 1000) + 1000)
return next_us - now_us
"""


class SharedRateLimiter:
    """Spaces requests to one exchange at `rate_per_s`, across processes and hosts."""

    def __init__(self, client: redis.Redis, exchange: str, rate_per_s: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self._client = client
        self._key = keys.rate_limit(exchange)
        self._interval_us = int(1_000_000 / rate_per_s)
        self._script = client.register_script(_RESERVE)
        self._sleep = sleep

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        wait_us = int(self._script(keys=[self._key], args=[self._interval_us]))
        if wait_us > 0:
            self._sleep(wait_us / 1_000_000)
        return wait_us / 1_000_000
