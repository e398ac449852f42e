"""Queue depth, in-flight messages and message ages, read straight from kombu's Redis keys."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client.core import GaugeMetricFamily, Metric

from services.core.priority import priority_keys
from services.exporter.health import ScrapeHealth

__all__ = ["QueueReading", "QueueProbe", "QueueCollector", "SENT_AT_HEADER"]

# kombu's Redis transport keeps a queue's waiting messages in one list per priority step
# (services/core/priority.py names them) and parks delivered-but-unacknowledged ones in a
# hash and a zset.
UNACKED_KEY = Channel.unacked_key
UNACKED_INDEX_KEY = Channel.unacked_index_key
# Celery messages carry no enqueue time; a `before_task_publish` hook can add one.
SENT_AT_HEADER = "sent_at"


@dataclass(frozen=True)
class QueueReading:
    """One queue at one instant; times are Unix seconds, None where they cannot be known."""

    depth: int = 0
    in_flight: int = 0
    oldest_sent_at: float | None = None
    oldest_delivered_at: float | None = None


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


class QueueProbe:
    """Reads every queue in one pipelined round trip: O(queues * priority steps), never O(messages)."""

    def __init__(self, client: redis.Redis, queues: Iterable[str], *,
                 priority_steps: Iterable[int] = PRIORITY_STEPS, key_prefix: str = "",
                 routing: Mapping[str, str] | None = None, unacked_parse_limit: int = 1000,
                 sent_time_of: Callable[[str], float | None] = lambda task_id: None) -> None:
        self._client = client
        self._queues = tuple(queues)
        self._keys = {queue: priority_keys(queue, priority_steps, prefix=key_prefix) for queue in self._queues}
        self._prefix = key_prefix
        # routing key → queue; Celery publishes to the default exchange with the queue's name as key.
        self._routing = dict(routing or {})
        self._parse_limit = unacked_parse_limit
        self._sent_time_of = sent_time_of

    def read(self) -> tuple[dict[str, QueueReading], int]:
        """(reading per queue, total unacknowledged messages in the broker)."""
        pipe = self._client.pipeline(transaction=False)
        for queue in self._queues:
            for key in self._keys[queue]:
                pipe.llen(key)
                pipe.lindex(key, -1)  # LPUSH in, RPOP out: the right end is the oldest message
        pipe.hlen(self._prefix + UNACKED_KEY)
        replies = iter(pipe.execute())
        readings = {}
        for queue in self._queues:
            depth, oldest = 0, None
            for _ in self._keys[queue]:
                depth += int(next(replies) or 0)
                oldest = _earliest(oldest, self._sent_at(next(replies)))
            readings[queue] = QueueReading(depth=depth, oldest_sent_at=oldest)
        unacked = int(next(replies) or 0)
        if 0 < unacked <= self._parse_limit:
            for queue, (count, delivered_at) in self._in_flight().items():
                before = readings.get(queue, QueueReading())
                readings[queue] = QueueReading(before.depth, count, before.oldest_sent_at, delivered_at)
        return readings, unacked

    def _sent_at(self, payload: bytes | None) -> float | None:
        if payload is None:
            return None
        try:
            headers = json.loads(payload).get("headers") or {}
        except (ValueError, AttributeError):
            return None
        stamped = headers.get(SENT_AT_HEADER)
        if isinstance(stamped, (int, float)):
            return float(stamped)
        return self._sent_time_of(headers["id"]) if headers.get("id") else None

    def _in_flight(self) -> dict[str, tuple[int, float | None]]:
        """Per queue: (unacknowledged messages, earliest delivery time), from the stored payloads."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self._prefix + UNACKED_KEY)
        pipe.zrange(self._prefix + UNACKED_INDEX_KEY, 0, -1, withscores=True)
        payloads, index = pipe.execute()
        delivered = {tag.decode() if isinstance(tag, bytes) else tag: score for tag, score in index}
        result: dict[str, tuple[int, float | None]] = {}
        for tag, payload in payloads.items():
            queue = self._queue_of(payload)
            count, earliest = result.get(queue, (0, None))
            tag = tag.decode() if isinstance(tag, bytes) else tag
            result[queue] = (count + 1, _earliest(earliest, delivered.get(tag)))
        return result

    def _queue_of(self, payload: bytes) -> str:
        try:
            _message, _exchange, routing_key = json.loads(payload)
        except (ValueError, TypeError):
            return "unknown"
        return self._routing.get(routing_key, routing_key or "unknown")


class QueueCollector:
    """Yields queue depth, in-flight counts and ages; every configured queue is always present."""

    def __init__(self, probe: QueueProbe, health: ScrapeHealth, clock: Callable[[], float] = time.time) -> None:
        self._probe = probe
        self._health = health
        self._clock = clock

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        result = self._health.attempt("queues", self._probe.read)
        if result is None:
            return
        readings, unacked = result
        now = self._clock()
        depth = GaugeMetricFamily("candleflow_queue_depth",
                                  "Messages waiting in a queue, summed over its priority sub-queues",
                                  labels=["queue"])
        in_flight = GaugeMetricFamily("candleflow_queue_in_flight",
                                      "Messages delivered to a worker but not yet acknowledged", labels=["queue"])
        waiting_age = GaugeMetricFamily("candleflow_queue_oldest_message_age_seconds",
                                        "Age of the oldest waiting message, where its send time is known",
                                        labels=["queue"])
        in_flight_age = GaugeMetricFamily("candleflow_queue_oldest_in_flight_age_seconds",
                                          "Time since the longest-held unacknowledged message was delivered",
                                          labels=["queue"])
        for queue, reading in sorted(readings.items()):
            depth.add_metric([queue], reading.depth)
            in_flight.add_metric([queue], reading.in_flight)
            if reading.oldest_sent_at is not None:
                waiting_age.add_metric([queue], max(0.0, now - reading.oldest_sent_at))
            if reading.oldest_delivered_at is not None:
                in_flight_age.add_metric([queue], max(0.0, now - reading.oldest_delivered_at))
        unacked_total = GaugeMetricFamily("candleflow_broker_unacked_messages",
                                          "All unacknowledged messages the broker holds (ETA tasks included)")
        unacked_total.add_metric([], unacked)
        yield from (depth, in_flight, waiting_age, in_flight_age, unacked_total)
