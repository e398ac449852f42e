"""Worker collector: online workers and consumers per queue, from polls corrected by worker events."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.exporter.health import ScrapeHealth
from services.exporter.workers import InspectPoller, WorkerCollector, WorkerDirectory, queues_from_replies

QUEUES = ("ingest", "indicators", "signals")


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def registry_for(directory: WorkerDirectory) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(WorkerCollector(directory))
    return registry


def consumers(registry, queue):
    return registry.get_sample_value("candleflow_queue_consumers", {"queue": queue})


REPLIES = {
    "ingest@a": [{"name": "ingest", "routing_key": "ingest"}],
    "ingest@b": [{"name": "ingest", "routing_key": "ingest"}],
    "indicators@a": [{"name": "indicators", "routing_key": "indicators"}],
}


def test_consumers_are_counted_per_queue_and_a_queue_nobody_consumes_shows_zero():
    directory = WorkerDirectory(QUEUES)
    directory.record_poll(queues_from_replies(REPLIES))
    registry = registry_for(directory)
    assert registry.get_sample_value("candleflow_workers_online") == 3
    per_queue = (consumers(registry, "ingest"), consumers(registry, "indicators"), consumers(registry, "signals"))
    assert per_queue == (2, 1, 0)
    assert registry.get_sample_value("candleflow_worker_up", {"worker": "ingest@b"}) == 1


def test_nothing_is_reported_before_the_first_poll_so_startup_raises_no_false_alarm():
    registry = registry_for(WorkerDirectory(QUEUES))
    assert registry.get_sample_value("candleflow_workers_online") is None
    assert consumers(registry, "signals") is None


def test_no_replies_at_all_means_no_workers():
    directory = WorkerDirectory(QUEUES)
    directory.record_poll(queues_from_replies(None))
    registry = registry_for(directory)
    assert registry.get_sample_value("candleflow_workers_online") == 0
    assert consumers(registry, "ingest") == 0


def test_a_worker_offline_event_removes_its_consumers_before_the_next_poll():
    directory = WorkerDirectory(QUEUES)
    directory.record_poll(queues_from_replies(REPLIES))
    directory.record_event({"type": "worker-offline", "hostname": "indicators@a"})
    registry = registry_for(directory)
    assert consumers(registry, "indicators") == 0
    assert registry.get_sample_value("candleflow_workers_online") == 2


def test_a_poll_sent_before_a_worker_went_offline_does_not_bring_it_back():
    clock = Clock()
    directory = WorkerDirectory(QUEUES, clock=clock)
    asked_at = clock.now
    clock.now += 0.5
    directory.record_event({"type": "worker-offline", "hostname": "indicators@a"})
    clock.now += 0.5
    directory.record_poll(queues_from_replies(REPLIES), asked_at)
    assert consumers(registry_for(directory), "indicators") == 0


def test_a_new_worker_asks_for_an_early_poll():
    directory = WorkerDirectory(QUEUES)
    directory.record_poll(queues_from_replies(REPLIES))
    directory.record_event({"type": "worker-heartbeat", "hostname": "ingest@a"})
    assert not directory.poll_wanted.is_set()
    directory.record_event({"type": "worker-online", "hostname": "signals@c"})
    assert directory.poll_wanted.is_set()


def test_the_poll_age_says_how_old_the_figures_are():
    clock = Clock()
    directory = WorkerDirectory(QUEUES, clock=clock)
    directory.record_poll({})
    clock.now += 7
    assert registry_for(directory).get_sample_value("candleflow_exporter_worker_poll_age_seconds") == 7


class _Inspect:
    def __init__(self, replies=None, error=None):
        self._replies, self._error = replies, error

    def active_queues(self):
        if self._error:
            raise self._error
        return self._replies


class _App:
    def __init__(self, inspect: _Inspect) -> None:
        self.control = self
        self._inspect = inspect

    def inspect(self, timeout):
        return self._inspect


def test_a_failed_poll_keeps_the_last_answer_and_counts_an_error():
    directory, health = WorkerDirectory(QUEUES), ScrapeHealth()
    assert InspectPoller(_App(_Inspect(REPLIES)), directory, health).poll_once()
    assert not InspectPoller(_App(_Inspect(error=OSError("broker gone"))), directory, health).poll_once()
    assert consumers(registry_for(directory), "ingest") == 2
    assert health.snapshot()[0] == {"workers_inspect": 1}
