"""Builds the ingest context (source, limiter, database) from settings, once per process."""

from __future__ import annotations

from functools import lru_cache

import redis

from services.core.config import Settings, get_settings
from services.core.db import engine_for
from services.ingest.fetching import IngestContext
from services.ingest.ratelimit import SharedRateLimiter
from services.ingest.retry import RetryPolicy

__all__ = ["build_context", "worker_context"]


def build_context(settings: Settings, retry_clock: bool = True) -> IngestContext:
    """A ccxt source throttled by the Redis-shared limiter, writing to DATABASE_URL."""
    # ccxt (about 67 MB) is imported by the process that fetches: a worker's pool child, on its
    # first task, not the worker's main process, which only hands tasks over.
    from services.ingest.sources.ccxt_source import CcxtSource
    limiter = SharedRateLimiter(redis.Redis.from_url(settings.redis_url), settings.exchange,
                                settings.exchange_rate_limit_per_s)
    source = CcxtSource(settings.exchange, settings.exchange_api_url, settings.exchange_timeout_ms,
                        throttle=limiter.acquire, clock_recheck_s=settings.exchange_clock_recheck_s,
                        reserve=limiter.ahead)
    policy = RetryPolicy(settings.fetch_retries, settings.backoff_base_s, settings.backoff_max_s)
    return IngestContext(source=source, engine=engine_for(settings.database_url), policy=policy,
                         retry_clock=retry_clock)


@lru_cache(maxsize=1)
def worker_context() -> IngestContext:
    """The context of this worker process; markets are loaded once and reused. An unreadable
    clock raises at once: the task's own retry (with backoff) takes it from there."""
    return build_context(get_settings(), retry_clock=False)
