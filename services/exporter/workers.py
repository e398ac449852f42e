"""Online workers and consumers per queue: polled in the background, corrected at once by worker events."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from celery import Celery
from prometheus_client.core import GaugeMetricFamily, Metric

from services.exporter.health import ScrapeHealth

__all__ = ["WorkerDirectory", "InspectPoller", "WorkerCollector", "queues_from_replies"]

log = logging.getLogger(__name__)


def queues_from_replies(replies: Mapping[str, list[dict]] | None) -> dict[str, frozenset[str]]:
    """`inspect().active_queues()` replies as worker → names of the queues it consumes."""
    return {worker: frozenset(q["name"] for q in queues or () if q.get("name"))
            for worker, queues in (replies or {}).items()}


class WorkerDirectory:
    """Which workers are online and what they consume.

    The poll is the authority; a `worker-offline` event removes a worker at once
    (a stopped worker must not count as a consumer until the next poll), and a
    `worker-online` event asks for an early poll to learn the newcomer's queues.
    """

    def __init__(self, queues: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.queues = tuple(queues)
        self.clock = clock
        self._lock = threading.Lock()
        self._workers: dict[str, frozenset[str]] = {}
        self._offline_at: dict[str, float] = {}
        self._polled_at: float | None = None
        self.poll_wanted = threading.Event()

    def record_poll(self, workers: Mapping[str, frozenset[str]], asked_at: float | None = None) -> None:
        """The answer to a poll sent at `asked_at`; a worker that went offline since is left out."""
        with self._lock:
            asked_at = self.clock() if asked_at is None else asked_at
            self._workers = {worker: queues for worker, queues in workers.items()
                             if self._offline_at.get(worker, float("-inf")) < asked_at}
            self._polled_at = self.clock()

    def record_event(self, event: Mapping) -> None:
        """Apply a `worker-*` event from the event stream."""
        worker = event.get("hostname")
        if not worker:
            return
        if event.get("type") == "worker-offline":
            with self._lock:
                self._workers.pop(worker, None)
                self._offline_at[worker] = self.clock()
        elif event.get("type") in ("worker-online", "worker-heartbeat"):
            with self._lock:
                unknown = worker not in self._workers
            if unknown:
                self.poll_wanted.set()

    def snapshot(self) -> tuple[dict[str, frozenset[str]], float | None]:
        """(worker → queues, Unix time of the last successful poll or None)."""
        with self._lock:
            return dict(self._workers), self._polled_at


class InspectPoller(threading.Thread):
    """Asks every worker for its queues every `interval` seconds, or sooner when the directory wants it."""

    def __init__(self, app: Celery, directory: WorkerDirectory, health: ScrapeHealth, *,
                 interval: float = 10.0, timeout: float = 1.0,
                 record_memory: Callable[[list[dict]], None] | None = None) -> None:
        super().__init__(name="exporter-inspect", daemon=True)
        self._app = app
        self._directory = directory
        self._health = health
        self._record_memory = record_memory
        self._interval = interval
        self._timeout = timeout
        self._stopping = threading.Event()

    def poll_once(self) -> bool:
        """One broadcast; True when it completed (no replies at all is a valid answer: no workers)."""
        asked_at = self._directory.clock()
        replies = self._health.attempt(
            "workers_inspect", lambda: self._app.control.inspect(timeout=self._timeout).active_queues() or {})
        if replies is None:
            return False
        self._directory.record_poll(queues_from_replies(replies), asked_at)
        if self._record_memory is not None:
            self._poll_memory(len(replies))
        return True

    def _poll_memory(self, workers: int) -> None:
        # Each worker's pool processes' memory (services/core/pool_memory.py). `limit`: the
        # broadcast returns once the workers that just answered have, instead of waiting out
        # its timeout.
        replies = [] if not workers else self._health.attempt("workers_memory", lambda: self._app.control.broadcast(
            "pool_memory", reply=True, timeout=self._timeout, limit=workers) or [])
        if replies is not None:
            self._record_memory(replies)

    def run(self) -> None:
        while not self._stopping.is_set():
            self._directory.poll_wanted.clear()
            self.poll_once()
            self._directory.poll_wanted.wait(self._interval)

    def stop(self) -> None:
        self._stopping.set()
        self._directory.poll_wanted.set()


class WorkerCollector:
    """Yields online workers and consumers per queue; a queue nobody consumes shows 0, not nothing."""

    def __init__(self, directory: WorkerDirectory) -> None:
        self._directory = directory

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        workers, polled_at = self._directory.snapshot()
        if polled_at is None:
            return  # not asked yet: "0 workers" now would be a false alarm
        online = GaugeMetricFamily("candleflow_workers_online", "Celery workers answering the last poll")
        online.add_metric([], len(workers))
        up = GaugeMetricFamily("candleflow_worker_up", "1 for each Celery worker online, by hostname",
                               labels=["worker"])
        consumers = GaugeMetricFamily("candleflow_queue_consumers", "Online workers consuming a queue",
                                      labels=["queue"])
        for worker in sorted(workers):
            up.add_metric([worker], 1)
        counts = dict.fromkeys(self._directory.queues, 0)
        for queues in workers.values():
            for queue in queues:
                counts[queue] = counts.get(queue, 0) + 1
        for queue, count in sorted(counts.items()):
            consumers.add_metric([queue], count)
        age = GaugeMetricFamily("candleflow_exporter_worker_poll_age_seconds",
                                "Time since workers were last polled (the figures above are this old)")
        age.add_metric([], max(0.0, self._directory.clock() - polled_at))
        yield from (online, up, consumers, age)
