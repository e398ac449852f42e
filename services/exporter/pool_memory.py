"""Resident memory of every worker's pool processes, from the workers' own `pool_memory` command.

The exporter runs in a container of its own and cannot read the workers' /proc; each worker
reads its children's (services/core/pool_memory.py) and answers the broadcast that
InspectPoller sends after its queue poll. Children are labelled by pool index, not pid:
billiard gives a replaced child its predecessor's index, so recycling (WORKER_MAX_*_PER_CHILD)
adds no series, and the series are at most workers × concurrency.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from services.exporter.workers import WorkerDirectory

__all__ = ["ChildMemory", "WorkerMemory", "memory_from_replies", "PoolMemory", "PoolMemoryCollector"]


@dataclass(frozen=True)
class ChildMemory:
    index: int
    rss_bytes: int
    peak_rss_bytes: int


@dataclass(frozen=True)
class WorkerMemory:
    limit_bytes: int | None  # WORKER_MAX_MEMORY_PER_CHILD_KB in bytes; None: no limit
    children: tuple[ChildMemory, ...]


def memory_from_replies(replies: Iterable[Mapping[str, object]] | None) -> dict[str, WorkerMemory]:
    """`broadcast("pool_memory", reply=True)` replies as worker → its children's memory.

    A worker without the command (an older image during an upgrade) answers with an error and
    is left out, as is a child whose figures are missing.
    """
    found = {}
    for reply in replies or ():
        for worker, answer in reply.items():
            if not isinstance(answer, Mapping) or not isinstance(answer.get("children"), list):
                continue
            children = tuple(ChildMemory(child["index"], child["rss_bytes"], child["peak_rss_bytes"])
                             for child in answer["children"]
                             if {"index", "rss_bytes", "peak_rss_bytes"} <= set(child))
            found[worker] = WorkerMemory(answer.get("limit_bytes"), children)
    return found


class PoolMemory:
    """The last answer, shared by the poller thread that writes it and the scrapes that read it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerMemory] | None = None

    def record(self, workers: Mapping[str, WorkerMemory]) -> None:
        with self._lock:
            self._workers = dict(workers)

    def snapshot(self) -> dict[str, WorkerMemory] | None:
        """Worker → memory, or None before the first answer."""
        with self._lock:
            return None if self._workers is None else dict(self._workers)


class PoolMemoryCollector:
    """Yields each online worker's children's RSS, their peaks, and the worker's per-child limit."""

    def __init__(self, directory: WorkerDirectory, memory: PoolMemory) -> None:
        self._directory = directory
        self._memory = memory

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        workers = self._memory.snapshot()
        if workers is None:
            return
        online, _ = self._directory.snapshot()  # a worker gone since the answer is not reported
        rss = GaugeMetricFamily("candleflow_worker_child_rss_bytes",
                                "Resident memory of each pool process of a worker, by pool index",
                                labels=["worker", "child"])
        peak = GaugeMetricFamily("candleflow_worker_child_peak_rss_bytes",
                                 "Peak resident memory of each pool process (what WORKER_MAX_MEMORY_PER_CHILD_KB "
                                 "is compared with)", labels=["worker", "child"])
        limit = GaugeMetricFamily("candleflow_worker_child_memory_limit_bytes",
                                  "WORKER_MAX_MEMORY_PER_CHILD_KB of a worker, in bytes (absent: no limit)",
                                  labels=["worker"])
        for worker in sorted(set(workers) & set(online)):
            memory = workers[worker]
            if memory.limit_bytes:
                limit.add_metric([worker], memory.limit_bytes)
            for child in memory.children:
                rss.add_metric([worker, str(child.index)], child.rss_bytes)
                peak.add_metric([worker, str(child.index)], child.peak_rss_bytes)
        yield from (rss, peak, limit)
