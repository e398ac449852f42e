"""Task event collector: counters by task and queue, failures by exception, runtime and queue-wait histograms."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.exporter.events import TaskEventCollector, TaskEventStats, exception_type

ROUTES = {"ingest.stage.ohlc": "ingest", "signals.stage.signals": "signals", "pipeline.start": "ingest"}


class Stream:
    connected = True
    events_received = 0


def recorded(*events, tracked_tasks=100_000) -> tuple[TaskEventStats, CollectorRegistry]:
    stats = TaskEventStats(lambda name: ROUTES.get(name, "ingest"), tracked_tasks=tracked_tasks)
    for event in events:
        stats.record(event)
    registry = CollectorRegistry()
    registry.register(TaskEventCollector(stats, Stream()))
    return stats, registry


def lifecycle(uuid, name="ingest.stage.ohlc", sent=100.0, started=103.0, outcome="task-succeeded", **final):
    """The events one task produces, as Celery sends them: only task-sent/-received carry the name."""
    return [
        {"type": "task-sent", "uuid": uuid, "name": name, "queue": ROUTES[name], "timestamp": sent},
        {"type": "task-received", "uuid": uuid, "name": name, "timestamp": sent + 1},
        {"type": "task-started", "uuid": uuid, "timestamp": started},
        {"type": outcome, "uuid": uuid, "timestamp": started + 2, **final},
    ]


def test_each_stage_of_a_task_is_counted_under_its_name_and_queue():
    _, registry = recorded(*lifecycle("t1", runtime=2.0), *lifecycle("t2", runtime=1.0))
    labels = {"task": "ingest.stage.ohlc", "queue": "ingest"}
    for outcome in ("sent", "received", "started", "succeeded"):
        assert registry.get_sample_value(f"candleflow_tasks_{outcome}_total", labels) == 2


def test_failures_are_labelled_with_the_exception_type():
    _, registry = recorded(*lifecycle("t1", name="signals.stage.signals", outcome="task-failed",
                                      exception="KeyError('close')"))
    assert registry.get_sample_value("candleflow_tasks_failed_total", {
        "task": "signals.stage.signals", "queue": "signals", "exception": "KeyError"}) == 1


def test_exception_type_reads_celerys_repr():
    assert exception_type("ValueError('boom')") == "ValueError"
    assert exception_type("celery.exceptions.TimeLimitExceeded(600,)") == "TimeLimitExceeded"
    assert exception_type(None) == "unknown"


def test_retried_rejected_and_revoked_tasks_are_counted():
    _, registry = recorded(
        {"type": "task-received", "uuid": "r", "name": "ingest.stage.ohlc", "timestamp": 1.0},
        {"type": "task-retried", "uuid": "r", "exception": "NetworkError('reset')", "timestamp": 2.0},
        {"type": "task-rejected", "uuid": "x", "name": "ingest.stage.ohlc", "timestamp": 3.0},
        {"type": "task-received", "uuid": "v", "name": "signals.stage.signals", "timestamp": 4.0},
        {"type": "task-revoked", "uuid": "v", "timestamp": 5.0},
    )
    assert registry.get_sample_value("candleflow_tasks_retried_total", {
        "task": "ingest.stage.ohlc", "queue": "ingest", "exception": "NetworkError"}) == 1
    ingest = {"task": "ingest.stage.ohlc", "queue": "ingest"}
    signals = {"task": "signals.stage.signals", "queue": "signals"}
    assert registry.get_sample_value("candleflow_tasks_rejected_total", ingest) == 1
    assert registry.get_sample_value("candleflow_tasks_revoked_total", signals) == 1


def test_runtime_and_queue_wait_land_in_histogram_buckets():
    _, registry = recorded(*lifecycle("t1", sent=100.0, started=103.0, runtime=2.0),
                           *lifecycle("t2", sent=200.0, started=200.5, runtime=40.0))
    labels = {"task": "ingest.stage.ohlc", "queue": "ingest"}
    assert registry.get_sample_value("candleflow_task_runtime_seconds_count", labels) == 2
    assert registry.get_sample_value("candleflow_task_runtime_seconds_sum", labels) == 42.0
    assert registry.get_sample_value("candleflow_task_runtime_seconds_bucket", {**labels, "le": "2.5"}) == 1
    assert registry.get_sample_value("candleflow_task_runtime_seconds_bucket", {**labels, "le": "+Inf"}) == 2
    assert registry.get_sample_value("candleflow_task_queue_wait_seconds_sum", labels) == 3.5
    assert registry.get_sample_value("candleflow_task_queue_wait_seconds_bucket", {**labels, "le": "0.5"}) == 1


def test_a_failed_tasks_runtime_is_measured_from_its_start():
    _, registry = recorded(*lifecycle("t1", outcome="task-failed", exception="OSError()"))
    assert registry.get_sample_value("candleflow_task_runtime_seconds_sum",
                                     {"task": "ingest.stage.ohlc", "queue": "ingest"}) == 2.0


def test_a_task_first_seen_by_id_alone_falls_back_to_the_routing_table():
    _, registry = recorded({"type": "task-received", "uuid": "t", "name": "signals.stage.signals", "timestamp": 1.0},
                           {"type": "task-succeeded", "uuid": "t", "runtime": 0.1, "timestamp": 2.0},
                           {"type": "task-succeeded", "uuid": "orphan", "runtime": 0.1, "timestamp": 2.0})
    signals = {"task": "signals.stage.signals", "queue": "signals"}
    assert registry.get_sample_value("candleflow_tasks_succeeded_total", signals) == 1
    assert registry.get_sample_value("candleflow_tasks_succeeded_total", {"task": "unknown", "queue": "unknown"}) == 1


def test_the_last_send_of_each_task_is_kept_for_the_beat_alert():
    _, registry = recorded(*lifecycle("a", name="pipeline.start", sent=3600.0),
                           *lifecycle("b", name="pipeline.start", sent=7200.0))
    last_sent = registry.get_sample_value("candleflow_task_last_sent_timestamp_seconds", {"task": "pipeline.start"})
    assert last_sent == 7200.0


def test_send_times_are_remembered_until_the_task_finishes_and_the_memory_is_bounded():
    stats, _ = recorded({"type": "task-sent", "uuid": "waiting", "name": "pipeline.start", "timestamp": 50.0},
                        *lifecycle("done"), tracked_tasks=2)
    assert stats.sent_time_of("waiting") == 50.0
    assert stats.sent_time_of("done") is None
    for n in range(3):
        stats.record({"type": "task-sent", "uuid": f"more-{n}", "name": "pipeline.start", "timestamp": 60.0 + n})
    assert stats.sent_time_of("waiting") is None and stats.sent_time_of("more-2") == 62.0


def test_every_family_is_present_before_any_event_so_dashboards_and_alerts_see_zeros():
    _, registry = recorded()
    names = {metric.name for metric in registry.collect()}
    assert {"candleflow_tasks_failed", "candleflow_task_runtime_seconds",
            "candleflow_exporter_event_stream_up"} <= names
    assert registry.get_sample_value("candleflow_exporter_event_stream_up") == 1
