"""Queue depth, in-flight messages and message ages: from kombu's Redis keys, or RabbitMQ's passive declares."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import redis
from kombu import Connection
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client.core import GaugeMetricFamily, Metric

from services.core.brokers import broker_of, queue_depths_amqp
from services.core.priority import priority_keys
from services.exporter.health import ScrapeHealth

__all__ = ["QueueReading", "QueueProbe", "AmqpQueueProbe", "QueueCollector", "SENT_AT_HEADER", "broker_probe"]

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
    in_flight: int | None = 0  # None: the broker does not say (RabbitMQ's passive declare)
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


class AmqpQueueProbe:
    """Reads every queue's ready messages on RabbitMQ with a passive declare each, over one kept connection.

    A passive declare answers with the ready count only: in-flight messages and message ages are
    not known this way (None), and the management API that knows them samples them every few
    seconds at several times the cost (bench/broker_depth.py)."""

    def __init__(self, connect: Callable[[], Connection], queues: Iterable[str]) -> None:
        self._connect = connect
        self._queues = list(queues)
        self._connection: Connection | None = None
        self._lock = threading.Lock()  # scrapes may overlap; a kombu connection is not thread-safe

    def read(self) -> tuple[dict[str, QueueReading], int | None]:
        """(reading per queue, None: the broker's unacknowledged total is not known this way)."""
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            try:
                depths = queue_depths_amqp(self._connection, self._queues)
            except Exception:
                self._connection.release()  # reconnect on the next scrape rather than reuse a broken one
                self._connection = None
                raise
        return {queue: QueueReading(depth=ready, in_flight=None) for queue, (ready, _consumers) in depths.items()}, None


def broker_probe(app, broker_client: redis.Redis, **redis_options) -> QueueProbe | AmqpQueueProbe:
    """The probe for the app's broker: passive declares on RabbitMQ, else kombu's keys read through
    `broker_client` (the broker's Redis) with `redis_options`."""
    queues = [queue.name for queue in app.amqp.queues.values()]
    if broker_of(app.conf.broker_url).kind == "amqp":
        return AmqpQueueProbe(app.connection_for_read, queues)
    return QueueProbe(broker_client, queues, **redis_options)


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
            if reading.in_flight is not None:
                in_flight.add_metric([queue], reading.in_flight)
            if reading.oldest_sent_at is not None:
                waiting_age.add_metric([queue], max(0.0, now - reading.oldest_sent_at))
            if reading.oldest_delivered_at is not None:
                in_flight_age.add_metric([queue], max(0.0, now - reading.oldest_delivered_at))
        yield from (depth, in_flight, waiting_age, in_flight_age)
        if unacked is not None:
            unacked_total = GaugeMetricFamily("candleflow_broker_unacked_messages",
                                              "All unacknowledged messages the broker holds (ETA tasks included)")
            unacked_total.add_metric([], unacked)
            yield unacked_total
