"""The queue collector on RabbitMQ: depth from passive declares, in-flight figures left out rather than made up."""

from __future__ import annotations

from amqp.exceptions import NotFound
from prometheus_client import CollectorRegistry

from services.core.brokers import queue_depths_amqp
from services.exporter.health import ScrapeHealth, ScrapeHealthCollector
from services.exporter.queues import AmqpQueueProbe, QueueCollector

QUEUES = ("ingest", "indicators", "signals")


class FakeChannel:
    """Answers passive declares from a dict; a queue not in it is NOT_FOUND, which closes the channel."""

    def __init__(self, queues: dict[str, tuple[int, int]]) -> None:
        self.queues, self.closed = queues, False

    def queue_declare(self, queue: str, passive: bool = False):
        assert passive, "the probe never creates a queue"
        assert not self.closed, "a closed channel was reused"
        if queue not in self.queues:
            self.closed = True
            raise NotFound(f"no queue '{queue}'")
        return (queue, *self.queues[queue])

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self, queues: dict[str, tuple[int, int]]) -> None:
        self.queues, self.channels, self.released = queues, [], 0

    def channel(self) -> FakeChannel:
        self.channels.append(FakeChannel(self.queues))
        return self.channels[-1]

    def release(self) -> None:
        self.released += 1


def test_a_queue_nobody_declared_yet_counts_as_empty_on_a_fresh_channel():
    connection = FakeConnection({"ingest": (4, 1), "signals": (0, 2)})
    assert queue_depths_amqp(connection, list(QUEUES)) == {"ingest": (4, 1), "indicators": (0, 0), "signals": (0, 2)}
    assert len(connection.channels) == 2 and all(channel.closed for channel in connection.channels)


def registry_for(connection_factory) -> tuple[CollectorRegistry, ScrapeHealth]:
    health = ScrapeHealth()
    registry = CollectorRegistry()
    registry.register(QueueCollector(AmqpQueueProbe(connection_factory, QUEUES), health, clock=lambda: 0.0))
    registry.register(ScrapeHealthCollector(health))
    return registry, health


def test_depth_is_reported_and_unknown_figures_are_left_out():
    registry, _ = registry_for(lambda: FakeConnection({"ingest": (7, 1), "indicators": (0, 1), "signals": (2, 1)}))
    depth = {q: registry.get_sample_value("candleflow_queue_depth", {"queue": q}) for q in QUEUES}
    assert depth == {"ingest": 7, "indicators": 0, "signals": 2}
    assert registry.get_sample_value("candleflow_queue_in_flight", {"queue": "ingest"}) is None
    assert registry.get_sample_value("candleflow_broker_unacked_messages") is None


def test_a_failed_read_is_counted_and_the_connection_is_made_again_next_scrape():
    made = []

    def connect():
        made.append(FakeConnection({"ingest": (1, 1)}) if made else Broken())
        return made[-1]

    class Broken(FakeConnection):
        def __init__(self) -> None:
            super().__init__({})

        def channel(self):
            raise ConnectionResetError("broker went away")

    registry, health = registry_for(connect)
    assert registry.get_sample_value("candleflow_queue_depth", {"queue": "ingest"}) is None
    assert health.snapshot()[0] == {"queues": 1} and made[0].released == 1
    assert registry.get_sample_value("candleflow_queue_depth", {"queue": "ingest"}) == 1
    assert len(made) == 2
