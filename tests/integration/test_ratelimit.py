"""The per-exchange rate limit lives in Redis, so separate clients share one budget."""

import redis

from services.ingest.ratelimit import SharedRateLimiter


def _limiters(redis_url, exchange, count, rate):
    waits = []
    limiters = [SharedRateLimiter(redis.Redis.from_url(redis_url), exchange, rate, sleep=waits.append)
                for _ in range(count)]
    return limiters, waits


def test_two_clients_of_one_exchange_get_consecutive_slots_not_one_budget_each(redis_url):
    limiters, waits = _limiters(redis_url, "shared-test", 2, rate=10.0)
    granted = [limiters[i % 2].acquire() for i in range(10)]
    # Slot k opens k intervals after the first: a per-client limiter would give each
    # client its own slots 0, 1, 2 … and half of these waits would be near zero.
    for k, wait in enumerate(sorted(granted)):
        assert wait >= k * 0.1 - 0.05
    assert len(waits) >= 9


def test_different_exchanges_do_not_wait_for_each_other(redis_url):
    first, _ = _limiters(redis_url, "exchange-a", 1, rate=1.0)
    second, _ = _limiters(redis_url, "exchange-b", 1, rate=1.0)
    assert first[0].acquire() == 0.0
    assert second[0].acquire() == 0.0
    assert first[0].acquire() > 0.5  # same exchange again: must wait about a second
