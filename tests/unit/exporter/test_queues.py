"""Queue collector: depth over priority sub-queues, in-flight messages, message ages, failures."""

from __future__ import annotations

import json

import redis
from kombu.transport.redis import PRIORITY_STEPS as KOMBU_STEPS
from prometheus_client import CollectorRegistry

from services.core.priority import PRIORITY_SEP, priority_keys
from services.exporter.health import ScrapeHealth, ScrapeHealthCollector
from services.exporter.queues import QueueCollector, QueueProbe
from tests.unit.exporter.fakes import FakeRedis, celery_message

QUEUES = ("ingest", "indicators", "signals")
NOW = 1_700_000_000.0


def registry_for(client, sent_times=None, **options) -> CollectorRegistry:
    health = ScrapeHealth()
    probe = QueueProbe(client, QUEUES, routing={q: q for q in QUEUES},
                       sent_time_of=(sent_times or {}).get, **options)
    registry = CollectorRegistry()
    registry.register(QueueCollector(probe, health, clock=lambda: NOW))
    registry.register(ScrapeHealthCollector(health))
    return registry


def sample(registry, name, queue=None):
    return registry.get_sample_value(name, {"queue": queue} if queue else {})


def test_priority_keys_follow_kombus_naming():
    keys = priority_keys("signals", KOMBU_STEPS)
    assert keys == ["signals", f"signals{PRIORITY_SEP}3", f"signals{PRIORITY_SEP}6", f"signals{PRIORITY_SEP}9"]
    assert keys == ["signals", "signals\x06\x163", "signals\x06\x166", "signals\x06\x169"]


def test_depth_sums_every_priority_sub_queue():
    client = FakeRedis()
    for n, key in enumerate(priority_keys("signals", KOMBU_STEPS)):
        client.lpush(key, *[celery_message(f"{key}-{i}") for i in range(n + 1)])
    client.lpush("ingest", celery_message("only-one", routing_key="ingest"))
    registry = registry_for(client)
    assert sample(registry, "candleflow_queue_depth", "signals") == 1 + 2 + 3 + 4
    assert sample(registry, "candleflow_queue_depth", "ingest") == 1


def test_an_empty_queue_reports_zero_rather_than_nothing():
    registry = registry_for(FakeRedis())
    assert [sample(registry, "candleflow_queue_depth", q) for q in QUEUES] == [0, 0, 0]
    assert [sample(registry, "candleflow_queue_in_flight", q) for q in QUEUES] == [0, 0, 0]


def test_custom_priority_steps_are_counted_too():
    client = FakeRedis()
    for step in range(10):
        client.lpush(f"signals{PRIORITY_SEP}{step}" if step else "signals", celery_message(f"m{step}"))
    assert sample(registry_for(client, priority_steps=range(10)), "candleflow_queue_depth", "signals") == 10
    # With kombu's default steps, lists of other steps are not the transport's and are not counted.
    assert sample(registry_for(client), "candleflow_queue_depth", "signals") == 4


def test_one_round_trip_reads_all_queues_whatever_their_length():
    client = FakeRedis()
    client.lpush("signals", *[celery_message(str(i)) for i in range(5000)])
    list(registry_for(client).collect())
    assert client.round_trips == 1


def test_the_oldest_waiting_message_age_comes_from_a_sent_at_header():
    client = FakeRedis()
    client.lpush("signals", celery_message("old", sent_at=NOW - 120))
    client.lpush("signals", celery_message("new", sent_at=NOW - 5))
    client.lpush(f"signals{PRIORITY_SEP}6", celery_message("urgent", sent_at=NOW - 30))
    assert sample(registry_for(client), "candleflow_queue_oldest_message_age_seconds", "signals") == 120


def test_without_a_header_the_age_comes_from_the_seen_task_sent_event():
    client = FakeRedis()
    client.lpush("ingest", celery_message("seen", routing_key="ingest"))
    client.lpush("signals", celery_message("never-seen"))
    registry = registry_for(client, sent_times={"seen": NOW - 42})
    assert sample(registry, "candleflow_queue_oldest_message_age_seconds", "ingest") == 42
    # Unknowable ages are left out rather than guessed.
    assert sample(registry, "candleflow_queue_oldest_message_age_seconds", "signals") is None


def test_in_flight_messages_are_attributed_to_their_queue_by_routing_key():
    client = FakeRedis()
    for tag, queue, delivered in (("a", "signals", NOW - 10), ("b", "signals", NOW - 300), ("c", "ingest", NOW - 1)):
        payload = [json.loads(celery_message(tag, routing_key=queue)), "", queue]
        client.hset("unacked", tag, json.dumps(payload).encode())
        client.zadd("unacked_index", {tag: delivered})
    registry = registry_for(client)
    assert sample(registry, "candleflow_queue_in_flight", "signals") == 2
    assert sample(registry, "candleflow_queue_in_flight", "ingest") == 1
    assert sample(registry, "candleflow_queue_oldest_in_flight_age_seconds", "signals") == 300
    assert sample(registry, "candleflow_broker_unacked_messages") == 3


def test_past_the_parse_limit_only_the_unacked_total_is_reported():
    client = FakeRedis()
    for tag in ("a", "b", "c"):
        client.hset("unacked", tag, json.dumps([{}, "", "signals"]).encode())
    registry = registry_for(client, unacked_parse_limit=2)
    assert sample(registry, "candleflow_broker_unacked_messages") == 3
    assert sample(registry, "candleflow_queue_in_flight", "signals") == 0


def test_an_unreachable_redis_is_counted_as_a_scrape_error_not_raised():
    client = FakeRedis()
    client.fail = redis.ConnectionError("connection refused")
    scrape = {(s.name, tuple(s.labels.values())): s.value for m in registry_for(client).collect() for s in m.samples}
    assert ("candleflow_queue_depth", ("signals",)) not in scrape
    assert scrape[("candleflow_exporter_scrape_errors_total", ("queues",))] == 1
