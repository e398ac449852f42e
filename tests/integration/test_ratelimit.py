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


def _evalsha_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_announced_requests_share_round_trips_but_keep_their_own_slots(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiters, _ = _limiters(redis_url, "ahead-test", 1, rate=10.0)
    before = _evalsha_calls(client)
    with limiters[0].ahead(5):
        granted = [limiters[0].acquire() for _ in range(5)]
    # One round trip for five slots, each still an interval after the one before it.
    assert _evalsha_calls(client) - before == 1
    for k, wait in enumerate(granted):
        assert wait >= k * 0.1 - 0.05


def test_a_batch_reservation_pushes_other_processes_behind_it_not_beside_it(redis_url):
    limiters, _ = _limiters(redis_url, "ahead-shared", 2, rate=10.0)
    with limiters[0].ahead(5):
        limiters[0].acquire()
        # The other process's slot comes after all five the batch reserved (0.5 s), not among them.
        assert limiters[1].acquire() >= 0.45
        later = [limiters[0].acquire() for _ in range(4)]
    assert max(later) < 0.45


def test_at_most_a_second_of_the_budget_is_reserved_in_one_round_trip(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiters, _ = _limiters(redis_url, "ahead-horizon", 1, rate=4.0)
    before = _evalsha_calls(client)
    with limiters[0].ahead(8):
        for _ in range(8):
            limiters[0].acquire()
    assert _evalsha_calls(client) - before == 2  # 4 slots a second: two round trips for eight


def test_a_reserved_slot_left_too_long_is_dropped_not_used_late(redis_url):
    client = redis.Redis.from_url(redis_url)
    now = [0.0]
    limiter = SharedRateLimiter(client, "ahead-late", 10.0, sleep=lambda s: None, clock=lambda: now[0])
    with limiter.ahead(3):
        limiter.acquire()
        now[0] += 5.0  # the batch's threads stalled past the remaining two slots
        before = _evalsha_calls(client)
        limiter.acquire()
    assert _evalsha_calls(client) - before == 1


def test_without_an_announcement_every_request_is_its_own_round_trip(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiters, _ = _limiters(redis_url, "ahead-none", 1, rate=1000.0)
    before = _evalsha_calls(client)
    for _ in range(4):
        limiters[0].acquire()
    assert _evalsha_calls(client) - before == 4
