"""Task counters and runtime/queue-wait histograms, built from the Celery event stream."""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

__all__ = ["TaskEventStats", "TaskEventCollector", "exception_type", "OUTCOMES",
           "RUNTIME_BUCKETS", "QUEUE_WAIT_BUCKETS"]

# Celery event type → the counter it increments.
OUTCOMES = {
    "task-sent": "sent", "task-received": "received", "task-started": "started",
    "task-succeeded": "succeeded", "task-failed": "failed", "task-retried": "retried",
    "task-rejected": "rejected", "task-revoked": "revoked",
}
_WITH_EXCEPTION = ("failed", "retried")
# After these the task id will not be seen again (a retry reuses it, so it is not here).
_FINAL = ("succeeded", "failed", "rejected", "revoked")
RUNTIME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
QUEUE_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
_EXCEPTION_NAME = re.compile(r"\s*([A-Za-z_][\w.]*)")


def exception_type(text: str | None) -> str:
    """`ValueError('boom')` (the repr Celery puts in task-failed) → `ValueError`."""
    match = _EXCEPTION_NAME.match(text or "")
    return match.group(1).rsplit(".", 1)[-1] if match else "unknown"


@dataclass
class _Task:
    name: str
    queue: str
    sent_at: float | None = None
    started_at: float | None = None


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        running, out = 0, []
        # Not strict: counts stay empty until the first observation, and then nothing is cumulated.
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=False):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


class TaskEventStats:
    """Thread-safe tallies fed by `record(event)` from the receiver thread, read by the collector."""

    def __init__(self, queue_of: Callable[[str], str], tracked_tasks: int = 100_000) -> None:
        self._queue_of = queue_of
        self._limit = tracked_tasks
        self._lock = threading.Lock()
        self._tasks: OrderedDict[str, _Task] = OrderedDict()
        self._counts: dict[str, dict[tuple[str, ...], int]] = {outcome: {} for outcome in OUTCOMES.values()}
        self._runtime: dict[tuple[str, str], _Histogram] = {}
        self._wait: dict[tuple[str, str], _Histogram] = {}
        self._last_sent: dict[str, float] = {}

    def record(self, event: Mapping) -> None:
        outcome = OUTCOMES.get(event.get("type", ""))
        uuid = event.get("uuid")
        if outcome is None or not uuid:
            return
        at = float(event.get("timestamp") or 0.0)
        with self._lock:
            task = self._task(uuid, event)
            labels = (task.name, task.queue)
            if outcome in _WITH_EXCEPTION:
                labels += (exception_type(event.get("exception")),)
            self._counts[outcome][labels] = self._counts[outcome].get(labels, 0) + 1
            if outcome == "sent":
                task.sent_at = at
                self._last_sent[task.name] = max(at, self._last_sent.get(task.name, 0.0))
            elif outcome == "started":
                task.started_at = at
                if task.sent_at is not None:
                    self._observe(self._wait, QUEUE_WAIT_BUCKETS, task, at - task.sent_at)
            elif outcome == "succeeded" and event.get("runtime") is not None:
                self._observe(self._runtime, RUNTIME_BUCKETS, task, float(event["runtime"]))
            elif outcome == "failed" and task.started_at is not None:
                self._observe(self._runtime, RUNTIME_BUCKETS, task, at - task.started_at)
            if outcome in _FINAL:
                self._tasks.pop(uuid, None)

    def sent_time_of(self, task_id: str) -> float | None:
        """When the task was sent, if its task-sent event was seen; used for the age of waiting messages."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.sent_at if task else None

    def snapshot(self) -> tuple[dict, dict, dict, dict]:
        """(counts per outcome, runtime histograms, wait histograms, last send per task), copied."""
        with self._lock:
            counts = {outcome: dict(rows) for outcome, rows in self._counts.items()}
            copy = lambda hs: {k: _Histogram(h.bounds, list(h.counts), h.total) for k, h in hs.items()}  # noqa: E731
            return counts, copy(self._runtime), copy(self._wait), dict(self._last_sent)

    def _task(self, uuid: str, event: Mapping) -> _Task:
        # task-started/-succeeded/-failed name only the id; the name comes from an earlier event.
        task = self._tasks.get(uuid)
        if task is None:
            name = event.get("name") or "unknown"
            task = _Task(name, event.get("queue") or self._queue_for(name))
            self._tasks[uuid] = task
            if len(self._tasks) > self._limit:
                self._tasks.popitem(last=False)
        else:
            if event.get("name") and task.name == "unknown":
                task.name, task.queue = event["name"], self._queue_for(event["name"])
            if event.get("queue"):
                task.queue = event["queue"]
        return task

    def _queue_for(self, name: str) -> str:
        return "unknown" if name == "unknown" else self._queue_of(name)

    @staticmethod
    def _observe(histograms: dict, bounds: tuple, task: _Task, seconds: float) -> None:
        key = (task.name, task.queue)
        histograms.setdefault(key, _Histogram(bounds)).observe(max(0.0, seconds))


class EventStreamState(Protocol):
    connected: bool
    events_received: int


class TaskEventCollector:
    """Yields the task counters and histograms; families are present (maybe empty) from the first scrape."""

    def __init__(self, stats: TaskEventStats, stream: EventStreamState | None = None) -> None:
        self._stats = stats
        self._stream = stream

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        counts, runtime, wait, last_sent = self._stats.snapshot()
        for outcome, rows in counts.items():
            labels = ["task", "queue", "exception"] if outcome in _WITH_EXCEPTION else ["task", "queue"]
            family = CounterMetricFamily(f"candleflow_tasks_{outcome}", f"Tasks {outcome}, from Celery events",
                                         labels=labels)
            for key, count in sorted(rows.items()):
                family.add_metric(list(key), count)
            yield family
        for name, doc, histograms in (
            ("candleflow_task_runtime_seconds", "Task run time, from start to success or failure", runtime),
            ("candleflow_task_queue_wait_seconds", "Time from a task being sent to it starting on a worker", wait),
        ):
            family = HistogramMetricFamily(name, doc, labels=["task", "queue"])
            for key, histogram in sorted(histograms.items()):
                family.add_metric(list(key), histogram.cumulative(), histogram.total)
            yield family
        sent = GaugeMetricFamily("candleflow_task_last_sent_timestamp_seconds",
                                 "When a task of this name was last sent (from task-sent events)", labels=["task"])
        for task, at in sorted(last_sent.items()):
            sent.add_metric([task], at)
        yield sent
        if self._stream is not None:
            up = GaugeMetricFamily("candleflow_exporter_event_stream_up",
                                   "1 while the exporter is connected to the Celery event stream")
            up.add_metric([], 1 if self._stream.connected else 0)
            received = CounterMetricFamily("candleflow_exporter_events",
                                           "Celery events the exporter has received")
            received.add_metric([], self._stream.events_received)
            yield from (up, received)
