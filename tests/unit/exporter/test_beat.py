"""Beat collector: RedBeat's schedule as next-run and last-run timestamps per schedule entry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from redbeat.decoder import RedBeatJSONEncoder

from services.exporter.beat import BeatCollector
from services.exporter.health import ScrapeHealth
from tests.unit.exporter.fakes import FakeRedis

PREFIX = "candleflow:redbeat"


def schedule_entry(client: FakeRedis, name: str, due: float, last_run: datetime | None) -> None:
    key = f"{PREFIX}{name}"  # RedBeat joins prefix and name without a separator
    client.zadd(f"{PREFIX}:schedule", {key: due})
    meta = json.dumps({"last_run_at": last_run, "total_run_count": 3}, cls=RedBeatJSONEncoder)
    client.hset(key, "meta", meta.encode())


def registry_for(client: FakeRedis, health: ScrapeHealth | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(BeatCollector(client, PREFIX, health or ScrapeHealth()))
    return registry


def test_each_entry_reports_when_it_is_due_and_when_it_last_ran():
    client = FakeRedis()
    last = datetime(2024, 3, 1, 12, 5, tzinfo=UTC)
    schedule_entry(client, "pipeline-all-hourly", due=last.timestamp() + 3600, last_run=last)
    schedule_entry(client, "prune-daily", due=last.timestamp() + 50_000, last_run=None)
    registry = registry_for(client)
    hourly = {"entry": "pipeline-all-hourly"}
    assert registry.get_sample_value("candleflow_beat_next_run_timestamp_seconds", hourly) == last.timestamp() + 3600
    assert registry.get_sample_value("candleflow_beat_last_run_timestamp_seconds", hourly) == last.timestamp()
    assert registry.get_sample_value("candleflow_beat_last_run_timestamp_seconds", {"entry": "prune-daily"}) is None


def test_an_entry_that_will_never_run_again_has_no_due_time():
    client = FakeRedis()
    schedule_entry(client, "one-off", due=-1, last_run=None)
    registry = registry_for(client)
    assert registry.get_sample_value("candleflow_beat_next_run_timestamp_seconds", {"entry": "one-off"}) is None


def test_no_beat_ever_means_empty_families_not_an_error():
    health = ScrapeHealth()
    names = {metric.name for metric in registry_for(FakeRedis(), health).collect()}
    assert names == {"candleflow_beat_next_run_timestamp_seconds", "candleflow_beat_last_run_timestamp_seconds"}
    assert health.snapshot()[0] == {}

