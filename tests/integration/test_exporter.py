"""The exporter against real Redis, Postgres and a Celery worker; its metrics cover every dashboard and alert."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu import Queue
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from services.cli.procfile import parse_procfile
from services.core.celery_app import QUEUES, TASK_ROUTES
from services.core.priority import PRIORITY_SEP
from services.exporter.health import ScrapeHealth, ScrapeHealthCollector
from services.exporter.pipeline import QUERIES, PipelineCollector
from services.exporter.service import Exporter
from tests.unit.exporter.promql import dashboard_expressions, exposed_names, metric_names, rule_expressions
from tests.utils.servers import free_port, wait_for_port
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Metrics Prometheus makes itself for every target, not scraped from it.
PROMETHEUS_SYNTHETIC = {"up"}


def celery_app(broker: str, **transport_options) -> Celery:
    """A sender configured like services.core.celery_app, on `broker`."""
    app = Celery("candleflow-test", broker=broker)
    app.conf.update(task_queues=[Queue(name) for name in QUEUES], task_default_queue="ingest",
                    task_routes=TASK_ROUTES, task_send_sent_event=True,
                    broker_transport_options=transport_options)
    return app


@pytest.fixture()
def broker(redis_url):
    """A Redis database of this module's own, emptied before each test."""
    url = redis_url.rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.close()


def exporter_for(app: Celery, broker: str, engine) -> Exporter:
    return Exporter(app, redis.Redis.from_url(broker), engine)


def test_depth_counts_priority_queued_tasks_in_every_sub_queue(broker, engine):
    app = celery_app(broker)
    for n in range(40):
        app.send_task("signals.stage.signals", args=[{"n": n}], priority=n % 10)
    for n in range(7):
        app.send_task("ingest.stage.ohlc", args=[{"n": n}], priority=9)
    client = redis.Redis.from_url(broker)
    assert {key for key in client.keys("signals*")} == {
        b"signals", *(f"signals{PRIORITY_SEP}{step}".encode() for step in (3, 6, 9))}
    with app.connection() as connection:
        kombus_own_count = connection.default_channel._size("signals")
    registry = exporter_for(app, broker, engine).registry
    assert registry.get_sample_value("candleflow_queue_depth", {"queue": "signals"}) == 40 == kombus_own_count
    assert registry.get_sample_value("candleflow_queue_depth", {"queue": "ingest"}) == 7
    assert registry.get_sample_value("candleflow_queue_depth", {"queue": "indicators"}) == 0


def test_ten_priority_steps_are_all_counted_and_a_delivered_message_moves_to_in_flight(broker, engine):
    app = celery_app(broker, priority_steps=list(range(10)), queue_order_strategy="priority")
    for n in range(30):
        app.send_task("indicators.stage.indicators", args=[{"n": n}], priority=n % 10)
    assert len(redis.Redis.from_url(broker).keys("indicators*")) == 10
    registry = exporter_for(app, broker, engine).registry
    assert registry.get_sample_value("candleflow_queue_depth", {"queue": "indicators"}) == 30
    with app.connection() as connection:
        channel = connection.default_channel
        message = channel.basic_get("indicators", no_ack=False)  # as a worker takes it: unacknowledged
        assert message is not None
        assert registry.get_sample_value("candleflow_queue_depth", {"queue": "indicators"}) == 29
        assert registry.get_sample_value("candleflow_queue_in_flight", {"queue": "indicators"}) == 1
        assert registry.get_sample_value("candleflow_queue_oldest_in_flight_age_seconds", {"queue": "indicators"}) >= 0
        channel.basic_ack(message.delivery_tag)
    assert registry.get_sample_value("candleflow_queue_in_flight", {"queue": "indicators"}) == 0


def test_a_publish_hook_stamping_sent_at_gives_the_oldest_waiting_message_its_age(broker, engine):
    from celery.signals import before_task_publish

    def stamp(headers=None, **_):  # the hook proposed for services/core/celery_app.py
        headers["sent_at"] = time.time() - 90

    before_task_publish.connect(stamp, weak=False)
    try:
        app = celery_app(broker)
        app.send_task("signals.stage.signals", args=[{}])
    finally:
        before_task_publish.disconnect(stamp)
    registry = exporter_for(app, broker, engine).registry
    assert registry.get_sample_value("candleflow_queue_oldest_message_age_seconds", {"queue": "signals"}) >= 90


def _pipeline_rows(engine) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = lambda n: now - timedelta(hours=n)  # noqa: E731
    candles = [{"i": 1, "ts": hours(h), "closed": h > 0} for h in range(5)]  # BTC's newest bar is still open
    candles += [{"i": 2, "ts": hours(3 + h), "closed": True} for h in range(3)]
    runs = [{"id": "r1", "kind": "all", "state": "SUCCESS", "finished": hours(2)},
            {"id": "r2", "kind": "all", "state": "SUCCESS", "finished": hours(1)},
            {"id": "r3", "kind": "all", "state": "PARTIAL", "finished": now},
            {"id": "r4", "kind": "backfill", "state": "STARTED", "finished": None}]
    rejects = [{"ts": n, "reason": r} for n, r in enumerate(("high_below_low", "high_below_low", "non_positive_price"))]
    windows = [{"start": hours(24 * (n + 1)), "end": hours(24 * n), "status": status}
               for n, status in enumerate(("ok", "failed", "failed", "gaps"))]
    signals = [{"ts": hours(h), "strategy": strategy, "side": side} for h, strategy, side in (
        (1, "ema_cross", "buy"), (2, "ema_cross", "buy"), (3, "rsi_reversal", "sell"), (48, "ema_cross", "sell"))]
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO instruments (id, exchange, symbol, timeframes) VALUES
            (1, 'binance', 'BTC/USD', ARRAY['1h']), (2, 'binance', 'ETH/USD', ARRAY['1h', '4h'])"""))
        conn.execute(text("""INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume,
            is_closed) VALUES (:i, '1h', :ts, 1, 1, 1, 1, 1, :closed)"""), candles)
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, state, finished_at)
            VALUES (:id, :kind, :state, :finished)"""), runs)
        conn.execute(text("""INSERT INTO rejected_candles (instrument_id, timeframe, raw_ts, raw, reason)
            VALUES (1, '1h', :ts, '[]', :reason)"""), rejects)
        conn.execute(text("""INSERT INTO fetch_ledger (instrument_id, timeframe, window_start, window_end, status)
            VALUES (2, '1h', :start, :end, :status)"""), windows)
        conn.execute(text("""INSERT INTO signals (instrument_id, timeframe, ts, strategy, side, strength, price, inputs)
            VALUES (1, '1h', :ts, :strategy, :side, 1, 1, '{}')"""), signals)


def test_pipeline_metrics_reflect_the_rows_in_postgres(engine):
    _pipeline_rows(engine)
    health = ScrapeHealth()
    registry = CollectorRegistry()
    registry.register(PipelineCollector(engine, health))
    value = registry.get_sample_value
    btc, eth = {"exchange": "binance", "symbol": "BTC/USD"}, {"exchange": "binance", "symbol": "ETH/USD"}
    # BTC's newest closed bar opened an hour before the current hour, so it closed at the hour: age < 1 h.
    assert 0 <= value("candleflow_data_age_seconds", {**btc, "timeframe": "1h"}) < 3600
    assert 2 * 3600 <= value("candleflow_data_age_seconds", {**eth, "timeframe": "1h"}) < 3 * 3600
    assert value("candleflow_data_age_seconds", {**eth, "timeframe": "4h"}) is None  # no 4h candles yet
    assert value("candleflow_pipeline_runs", {"kind": "all", "state": "SUCCESS"}) == 2
    assert value("candleflow_pipeline_runs", {"kind": "backfill", "state": "STARTED"}) == 1
    last_success = value("candleflow_pipeline_last_success_timestamp_seconds", {"kind": "all"})
    assert abs(time.time() - last_success - 3600) < 3600
    assert value("candleflow_pipeline_last_run_state", {"kind": "all", "state": "PARTIAL"}) == 1
    assert value("candleflow_timeframe_seconds", {"timeframe": "4h"}) == 4 * 3600
    assert value("candleflow_rejected_candles", {"reason": "high_below_low"}) == 2
    assert value("candleflow_fetch_windows_pending_repair", {**eth, "timeframe": "1h", "status": "failed"}) == 2
    assert value("candleflow_fetch_windows_pending_repair", {**eth, "timeframe": "1h", "status": "ok"}) is None
    assert value("candleflow_signals_last_24h", {"strategy": "ema_cross", "side": "buy"}) == 2
    assert value("candleflow_signals_last_24h", {"strategy": "ema_cross", "side": "sell"}) is None  # 48 h old
    newest_signal = value("candleflow_signal_last_timestamp_seconds", {**btc, "timeframe": "1h"})
    assert abs(time.time() - newest_signal - 3600) < 3600
    assert value("candleflow_signal_last_timestamp_seconds", {**eth, "timeframe": "1h"}) is None
    assert health.snapshot()[0] == {}


def test_freshness_read_one_instrument_per_page_is_the_same_as_in_one_page(engine):
    _pipeline_rows(engine)
    with engine.begin() as conn:  # an instrument without timeframes must not end the pages early
        conn.execute(text("""INSERT INTO instruments (id, exchange, symbol, timeframes) VALUES
            (3, 'binance', 'NONE/USD', ARRAY[]::varchar[]), (4, 'binance', 'SOL/USD', ARRAY['1h'])"""))
        conn.execute(text("""INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume,
            is_closed) VALUES (4, '1h', date_trunc('hour', now()) - interval '2 hours', 1, 1, 1, 1, 1, true)"""))
    freshness = next(q for q in QUERIES if q.collector == "data_freshness")
    reads = []
    for page in (1, freshness.page):
        registry = CollectorRegistry()
        registry.register(PipelineCollector(engine, ScrapeHealth(), queries=[replace(freshness, page=page)]))
        reads.append({(s.name, tuple(sorted(s.labels.items()))) for m in registry.collect() for s in m.samples})
    assert reads[0] == reads[1]
    assert ("candleflow_timeframe_seconds", (("timeframe", "4h"),)) in reads[0]
    assert {dict(labels).get("symbol") for name, labels in reads[0] if name == "candleflow_data_age_seconds"} == {
        "BTC/USD", "ETH/USD", "SOL/USD"}


def test_a_retired_instrument_leaves_the_freshness_metrics_and_so_the_stale_data_alert(engine):
    from services.core.store.instruments import change_instrument

    _pipeline_rows(engine)
    with engine.begin() as conn:
        change_instrument(conn, "binance", "ETH/USD", active=False)

    def symbols() -> set[str]:
        registry = CollectorRegistry()
        registry.register(PipelineCollector(engine, ScrapeHealth()))
        return {s.labels["symbol"] for m in registry.collect() for s in m.samples
                if s.name in ("candleflow_data_age_seconds", "candleflow_signal_last_timestamp_seconds")}

    assert symbols() == {"BTC/USD"}
    with engine.begin() as conn:
        change_instrument(conn, "binance", "ETH/USD", active=True)
    assert symbols() == {"BTC/USD", "ETH/USD"}


def test_a_broken_query_is_reported_while_the_other_pipeline_metrics_still_arrive(engine):
    _pipeline_rows(engine)
    queries = [replace(q, sql="SELECT reason FROM no_such_table") if q.collector == "rejected_candles" else q
               for q in QUERIES]
    health = ScrapeHealth()
    registry = CollectorRegistry()
    registry.register(PipelineCollector(engine, health, queries=queries))
    registry.register(ScrapeHealthCollector(health))
    samples = {s.name: s.value for m in registry.collect() for s in m.samples
               if s.name != "candleflow_exporter_scrape_errors_total" or s.labels["collector"] == "rejected_candles"}
    assert samples["candleflow_exporter_scrape_errors_total"] == 1
    assert "candleflow_rejected_candles" not in samples
    assert "candleflow_data_age_seconds" in samples and "candleflow_signals_last_24h" in samples


def test_a_slow_query_is_cancelled_by_the_statement_timeout(engine):
    slow = [replace(QUERIES[0], sql="SELECT pg_sleep(5)")]
    health = ScrapeHealth()
    registry = CollectorRegistry()
    registry.register(PipelineCollector(engine, health, query_timeout_ms=50, queries=slow))
    list(registry.collect())
    assert health.snapshot()[0] == {"pipeline_runs": 1}


# --- the real process: `python -m services.exporter` next to a real worker -----------------------------------


def _wait_for(condition, what: str, timeout: float = 60.0):
    return wait_until(condition, what, timeout)


class Scrape:
    """One HTTP scrape of the exporter, parsed."""

    def __init__(self, port: int) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            self.text = response.read().decode()
        self.samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                        for family in text_string_to_metric_families(self.text) for s in family.samples}

    def value(self, name: str, **labels) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture()
def stack(broker, database_url, engine):
    """The exporter and a worker on the signals queue, as OS processes; yields (port, sender app, start worker)."""
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="cf-exporter-"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "REDIS_URL": broker, "DATABASE_URL": database_url, "ENVIRONMENT": "test",
           "EXPORTER_PORT": str(port), "EXPORTER_BIND": "127.0.0.1", "EXPORTER_INSPECT_INTERVAL_S": "1"}
    processes = {}

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        # The child keeps its own copy of the log's descriptor; ours is closed once it started.
        with open(logs / f"{name}.log", "w") as log_file:
            processes[name] = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                               start_new_session=True)
        return processes[name]

    def start_worker() -> subprocess.Popen:
        # The Procfile's own line, so the worker is started exactly as the stack starts it.
        spec = next(s for s in parse_procfile((ROOT / "Procfile").read_text()) if s.name == "worker-signals")
        return start("worker", spec.argv(env))

    exporter = start("exporter", [sys.executable, "-m", "services.exporter"])
    wait_for_port(port, process=exporter)
    try:
        yield port, celery_app(broker), start_worker, processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)


def test_the_running_exporter_sees_the_worker_its_tasks_and_the_worker_leaving(stack, engine):
    port, app, start_worker, processes = stack
    with engine.begin() as conn:  # the run whose signals stage is sent below, its ohlc stage already failed
        conn.execute(text("INSERT INTO pipeline_runs (id, kind, state) VALUES ('exporter-test-run', 'all', 'STARTED')"))
    worker = start_worker()
    _wait_for(lambda: Scrape(port).value("candleflow_queue_consumers", queue="signals") == 1, "the worker to consume")
    scrape = Scrape(port)
    assert scrape.value("candleflow_queue_consumers", queue="ingest") == 0
    assert scrape.value("candleflow_workers_online") == 1
    # Heartbeats prove the exporter is subscribed to events, so no task-sent event is missed below.
    _wait_for(lambda: (Scrape(port).value("candleflow_exporter_events_total") or 0) > 0, "worker events")

    skipped = {"run_id": "exporter-test-run", "timeframe": "1h", "params": {}, "symbols": ["BTC/USD"],
               "outcomes": {"BTC/USD": {"stages": [], "failed": {"stage": "ohlc", "error": "boom"}}}}
    app.send_task("signals.stage.signals", args=[skipped])
    app.send_task("signals.stage.signals", args=["not a carry"])  # the task indexes a str: TypeError
    labels = {"task": "signals.stage.signals", "queue": "signals"}
    scrape = _wait_for(lambda: (lambda s: s if s.value("candleflow_tasks_failed_total", exception="TypeError", **labels)
                                and s.value("candleflow_tasks_succeeded_total", **labels) else None)(Scrape(port)),
                       "a success and a failure to be counted")
    assert scrape.value("candleflow_tasks_sent_total", **labels) == 2
    assert scrape.value("candleflow_task_runtime_seconds_count", **labels) == 2
    assert scrape.value("candleflow_task_queue_wait_seconds_count", **labels) == 2
    assert scrape.value("candleflow_task_last_sent_timestamp_seconds", task="signals.stage.signals") > 0

    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(30)
    _wait_for(lambda: Scrape(port).value("candleflow_queue_consumers", queue="signals") == 0, "the consumer to go")
    app.send_task("signals.stage.signals", args=[skipped])
    assert Scrape(port).value("candleflow_queue_depth", queue="signals") == 1
    assert processes["exporter"].poll() is None


def test_the_running_exporter_reports_each_worker_child_s_memory_and_the_limit(stack):
    port, _app, start_worker, _processes = stack
    start_worker()
    scrape = _wait_for(lambda: (lambda s: s if any(name == "candleflow_worker_child_rss_bytes"
                                                   for name, _ in s.samples) else None)(Scrape(port)),
                       "a worker child's memory")
    (worker, child), rss = next(((dict(labels)["worker"], dict(labels)["child"]), value)
                                for (name, labels), value in scrape.samples.items()
                                if name == "candleflow_worker_child_rss_bytes")
    assert worker.startswith("signals@") and child == "0"  # the Procfile's one process
    assert 20 * 2**20 < rss <= scrape.value("candleflow_worker_child_peak_rss_bytes", worker=worker, child="0")
    assert scrape.value("candleflow_worker_child_memory_limit_bytes", worker=worker) == 600000 * 1024
    assert scrape.value("candleflow_exporter_scrape_errors_total", collector="workers_memory") in (None, 0)


def test_every_dashboard_panel_and_alert_queries_only_metrics_the_exporter_exposes(stack):
    port, _app, _start_worker, _processes = stack
    _wait_for(lambda: Scrape(port).value("candleflow_workers_online") is not None, "the first worker poll")
    exposed = exposed_names(Scrape(port).text) | PROMETHEUS_SYNTHETIC
    unknown = {(where, name) for where, expr in dashboard_expressions() + rule_expressions()
               for name in metric_names(expr) if name not in exposed}
    assert unknown == set()
    assert len(dashboard_expressions()) > 20  # the check above looked at real queries
