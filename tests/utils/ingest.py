"""Builders for ingest tests: a context on the simulator, and reading the tables back."""

from __future__ import annotations

import ccxt
import redis
from sqlalchemy import Engine, text

from services.ingest.fetching import IngestContext
from services.ingest.ratelimit import SharedRateLimiter
from services.ingest.retry import RetryPolicy
from services.ingest.sources.ccxt_source import CcxtSource
from services.ingest.sources.ccxt_urls import point_ccxt_at
from tests.utils.ccxt_sim import ccxt_config_for_sim

__all__ = ["sim_context", "reference_candles", "table_rows", "ledger", "FAST_RETRIES"]

# Real backoff shape, tiny numbers: the tests exercise retries, not patience.
FAST_RETRIES = RetryPolicy(retries=3, base_s=0.01, cap_s=0.05)


def sim_context(base_url: str, engine: Engine, redis_url: str, timeout_ms: int = 2000,
                policy: RetryPolicy = FAST_RETRIES, exchange: str = "binance") -> IngestContext:
    """The production ingest path (the ccxt client of `exchange`, the simulator's dialect; Redis limiter)
    aimed at the simulator."""
    limiter = SharedRateLimiter(redis.Redis.from_url(redis_url), exchange, rate_per_s=1000)
    # The simulator's clock jumps when a test advances it: read it on every sync.
    source = CcxtSource(exchange, base_url, timeout_ms, throttle=limiter.acquire, clock_recheck_s=0,
                        reserve=limiter.ahead)
    return IngestContext(source=source, engine=engine, policy=policy)


def reference_candles(base_url: str, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> list[list]:
    """What the exchange serves for the range, read independently with a plain ccxt client."""
    client = point_ccxt_at(ccxt.binance(ccxt_config_for_sim()), base_url)
    rows, cursor = [], since_ms
    while cursor < until_ms:
        page = client.fetch_ohlcv(symbol, timeframe, cursor, 1000)
        page = [row for row in page if row[0] < until_ms]
        if not page:
            break
        rows.extend(page)
        cursor = page[-1][0] + 1
    return rows


def table_rows(engine: Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params).all()]


def ledger(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(text(
            "SELECT i.symbol, l.timeframe, l.window_start, l.window_end, l.status, l.candles, l.rejected, "
            "l.missing, l.attempts, l.error FROM fetch_ledger l JOIN instruments i ON i.id = l.instrument_id "
            "ORDER BY i.symbol, l.window_start")).mappings().all()]
