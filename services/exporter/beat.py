"""Beat's schedule as RedBeat keeps it in Redis: when each periodic job last ran and is next due."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from redbeat.decoder import RedBeatJSONDecoder

from services.exporter.health import ScrapeHealth

__all__ = ["BeatCollector", "read_schedule"]


def _last_run(meta: bytes | None) -> float | None:
    try:
        last = json.loads(meta, cls=RedBeatJSONDecoder).get("last_run_at") if meta else None
    except (ValueError, TypeError, AttributeError):
        return None
    if not isinstance(last, datetime):
        return None
    return (last if last.tzinfo else last.replace(tzinfo=UTC)).timestamp()


def read_schedule(client: redis.Redis, key_prefix: str) -> dict[str, tuple[float, float | None]]:
    """schedule entry → (next due, last run) as Unix seconds; two round trips for the whole schedule."""
    entries = client.zrange(f"{key_prefix}:schedule", 0, -1, withscores=True)
    pipe = client.pipeline(transaction=False)
    for key, _due in entries:
        pipe.hget(key, "meta")
    metas = pipe.execute()
    schedule = {}
    for (key, due), meta in zip(entries, metas, strict=True):  # one hget per entry, in order
        entry = (key.decode() if isinstance(key, bytes) else key)[len(key_prefix):].lstrip(":")
        schedule[entry] = (due, _last_run(meta))
    return schedule


class BeatCollector:
    """Yields each entry's next due time and last run; a due time far in the past means beat is not running.

    The label is `entry`, not `job`: Prometheus owns `job` (the scrape job) and would rename ours.
    """

    def __init__(self, client: redis.Redis, key_prefix: str, health: ScrapeHealth) -> None:
        self._client = client
        self._prefix = key_prefix
        self._health = health

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        schedule = self._health.attempt("beat", lambda: read_schedule(self._client, self._prefix))
        if schedule is None:
            return
        due = GaugeMetricFamily("candleflow_beat_next_run_timestamp_seconds",
                                "When beat will next send this schedule entry (RedBeat's schedule)", labels=["entry"])
        last = GaugeMetricFamily("candleflow_beat_last_run_timestamp_seconds",
                                 "When beat last sent this schedule entry", labels=["entry"])
        for entry, (next_at, last_at) in sorted(schedule.items()):
            if next_at >= 0:  # RedBeat scores a job that will never run again as -1
                due.add_metric([entry], next_at)
            if last_at is not None:
                last.add_metric([entry], last_at)
        yield from (due, last)
