"""Pool memory: the workers' `pool_memory` replies as per-child gauges, for online workers only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.exporter.health import ScrapeHealth
from services.exporter.pool_memory import PoolMemory, PoolMemoryCollector, memory_from_replies
from services.exporter.workers import InspectPoller, WorkerDirectory, queues_from_replies

MB = 2**20
REPLIES = [
    {"ingest@a": {"limit_bytes": 600000 * 1024, "children": [
        {"index": 1, "pid": 12, "rss_bytes": 300 * MB, "peak_rss_bytes": 410 * MB},
        {"index": 0, "pid": 11, "rss_bytes": 200 * MB, "peak_rss_bytes": 220 * MB}]}},
    {"signals@b": {"limit_bytes": None, "children": []}},
    {"indicators@old": {"error": "unknown command 'pool_memory'"}},
]
QUEUES = {"ingest@a": [{"name": "ingest"}], "signals@b": [{"name": "signals"}], "indicators@old": [{"name": "x"}]}


def registry_for(online: dict, replies: list | None) -> CollectorRegistry:
    directory, memory = WorkerDirectory(("ingest", "indicators", "signals")), PoolMemory()
    directory.record_poll(queues_from_replies(online))
    if replies is not None:
        memory.record(memory_from_replies(replies))
    registry = CollectorRegistry()
    registry.register(PoolMemoryCollector(directory, memory))
    return registry


def test_each_child_is_a_series_by_pool_index_with_its_peak_and_the_workers_limit():
    registry = registry_for(QUEUES, REPLIES)
    rss = {child: registry.get_sample_value("candleflow_worker_child_rss_bytes", {"worker": "ingest@a", "child": child})
           for child in ("0", "1")}
    assert rss == {"0": 200 * MB, "1": 300 * MB}
    assert registry.get_sample_value("candleflow_worker_child_peak_rss_bytes",
                                     {"worker": "ingest@a", "child": "1"}) == 410 * MB
    assert registry.get_sample_value("candleflow_worker_child_memory_limit_bytes",
                                     {"worker": "ingest@a"}) == 600000 * 1024


def test_a_worker_without_a_limit_or_children_or_the_command_adds_no_series():
    samples = [s for family in registry_for(QUEUES, REPLIES).collect() for s in family.samples]
    assert {s.labels["worker"] for s in samples} == {"ingest@a"}


def test_a_worker_gone_offline_since_the_answer_is_not_reported():
    registry = registry_for({"signals@b": QUEUES["signals@b"]}, REPLIES)
    assert registry.get_sample_value("candleflow_worker_child_rss_bytes", {"worker": "ingest@a", "child": "0"}) is None


def test_before_the_first_answer_there_are_no_families_and_after_an_empty_one_they_are_empty():
    assert list(registry_for(QUEUES, None).collect()) == []
    families = list(registry_for({}, []).collect())
    assert [f.name for f in families] == ["candleflow_worker_child_rss_bytes", "candleflow_worker_child_peak_rss_bytes",
                                          "candleflow_worker_child_memory_limit_bytes"]
    assert all(not f.samples for f in families)


class _Control:
    def __init__(self, queues, memory=None, error=None):
        self.control = self
        self._queues, self._memory, self._error = queues, memory, error
        self.broadcasts = []

    def inspect(self, timeout):
        return self

    def active_queues(self):
        return self._queues

    def broadcast(self, command, **options):
        self.broadcasts.append((command, options))
        if self._error:
            raise self._error
        return self._memory


def test_the_poller_asks_for_memory_after_the_queues_and_waits_only_for_the_workers_that_answered():
    app, recorded = _Control(QUEUES, REPLIES), []
    poller = InspectPoller(app, WorkerDirectory(()), ScrapeHealth(), timeout=1.5, record_memory=recorded.append)
    assert poller.poll_once()
    assert app.broadcasts == [("pool_memory", {"reply": True, "timeout": 1.5, "limit": 3})]
    assert recorded == [REPLIES]


def test_no_workers_means_no_broadcast_and_no_children():
    app, recorded = _Control({}), []
    InspectPoller(app, WorkerDirectory(()), ScrapeHealth(), record_memory=recorded.append).poll_once()
    assert app.broadcasts == [] and recorded == [[]]


def test_a_failed_memory_broadcast_keeps_the_last_answer_and_counts_an_error():
    app, recorded, health = _Control(QUEUES, error=OSError("broker gone")), [], ScrapeHealth()
    assert InspectPoller(app, WorkerDirectory(()), health, record_memory=recorded.append).poll_once()
    assert recorded == [] and health.snapshot()[0] == {"workers_memory": 1}
