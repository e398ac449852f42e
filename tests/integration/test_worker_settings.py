"""WORKER_* and TASK_TIME_LIMITS in real worker processes: what `inspect conf` reports, what each child
weighs, a stage task killed at its run kind's limit, the threads pool, and a worker refusing a bad kind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.utils.servers import free_port
from tests.utils.waiting import wait_until
from tests.utils.workers import ROOT, running_worker

pytestmark = pytest.mark.integration

TUNING = {"WORKER_MAX_TASKS_PER_CHILD": "50", "WORKER_MAX_MEMORY_PER_CHILD_KB": "700000",
          "WORKER_PREFETCH_MULTIPLIER": "2", "TASK_TIME_LIMITS": json.dumps({"ohlc": 3})}


@pytest.fixture(scope="module")
def silent_exchange():
    """An exchange that accepts connections and never answers: a fetch hangs until its task's limit."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    held = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in held:
        connection.close()


@pytest.fixture(scope="module")
def worker(fresh_servers, silent_exchange):
    env = {**TUNING, "EXCHANGE": "binance", "EXCHANGE_API_URL": silent_exchange, "EXCHANGE_TIMEOUT_MS": "120000",
           "SYMBOLS": "BTC/USD", "TIMEFRAMES": "1h"}
    with running_worker("ingest", *fresh_servers, concurrency=2, **env) as running:
        yield running


def test_inspect_conf_reports_the_worker_settings_and_a_visibility_timeout_above_the_longest_limit(worker):
    conf = worker.inspect().conf()[worker.hostname]
    assert (conf["worker_pool"], conf["worker_max_tasks_per_child"], conf["worker_max_memory_per_child"],
            conf["worker_prefetch_multiplier"]) == ("prefork", 50, 700000, 2)
    # The longest limit is backfill's default 3600 s, not TASK_TIME_LIMIT_S's 600.
    assert conf["broker_transport_options"]["visibility_timeout"] == 7200
    pool = worker.inspect().stats()[worker.hostname]["pool"]
    assert pool["max-concurrency"] == 2 and pool["max-tasks-per-child"] == 50


def test_pool_memory_names_every_child_with_its_resident_memory_and_the_limit(worker):
    reply = worker.control.control.broadcast("pool_memory", reply=True, timeout=2.0,
                                             destination=[worker.hostname])[0][worker.hostname]
    processes = worker.inspect().stats()[worker.hostname]["pool"]["processes"]
    assert reply["limit_bytes"] == 700000 * 1024
    assert [child["index"] for child in reply["children"]] == [0, 1]
    assert sorted(child["pid"] for child in reply["children"]) == sorted(processes)
    for child in reply["children"]:
        # A child has imported Celery and the ingest package: tens of MB at least, never more than its peak.
        assert 20 * 2**20 < child["rss_bytes"] <= child["peak_rss_bytes"]


def test_a_stage_task_is_stopped_at_its_run_kinds_limit_and_the_run_says_so(worker, engine):
    from services.core.store.instruments import seed_instruments

    with engine.begin() as conn:  # the universe, as migrate seeds it
        seed_instruments(conn, "binance", ["BTC/USD"], ["1h"])
    run_id = "time-limit-run"
    worker.control.send_task("pipeline.start", args=["ohlc", {}], task_id=run_id, queue="pipeline")

    def finished():
        with engine.connect() as conn:
            row = conn.execute(text("SELECT state, errors FROM pipeline_runs WHERE id = :id"), {"id": run_id}).first()
        return row if row is not None and row.state not in ("STARTED", "SCHEDULED") else None

    # TASK_TIME_LIMIT_S stays 600: only the ohlc kind's own 3 s (soft 1 s) can end this run.
    state, errors = wait_until(finished, "the ohlc run to end", 120, detail=worker.log)
    assert (state, errors) == ("FAILURE", [{"instrument": "BTC/USD 1h", "stage": "ohlc",
                                            "error": "time limit exceeded"}])
    assert "Soft time limit (1s) exceeded for ingest.stage.ohlc" in worker.log()


def test_the_threads_pool_runs_in_one_process_and_has_no_children_to_weigh(fresh_servers):
    env = {"WORKER_POOL": "threads", "WORKER_MAX_MEMORY_PER_CHILD_KB": "0", "WORKER_MAX_TASKS_PER_CHILD": "0"}
    with running_worker("signals", *fresh_servers, concurrency=3, **env) as threads:
        conf = threads.inspect().conf()[threads.hostname]
        stats = threads.inspect().stats()[threads.hostname]
        reply = threads.control.control.broadcast("pool_memory", reply=True, timeout=2.0,
                                                  destination=[threads.hostname])[0][threads.hostname]
        assert threads.control.send_task("pipeline.ping", queue="pipeline").get(timeout=60) == "pong"
    assert conf["worker_pool"] == "threads" and conf["worker_max_memory_per_child"] is None
    assert stats["pool"]["implementation"] == "celery.concurrency.thread:TaskPool"
    assert stats["pool"]["max-concurrency"] == 3
    assert reply == {"limit_bytes": None, "children": []}


def test_a_worker_refuses_to_start_on_a_time_limit_for_an_unknown_run_kind(fresh_servers):
    redis_url, database_url = fresh_servers
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "REDIS_URL": redis_url, "DATABASE_URL": database_url, "TASK_TIME_LIMITS": '{"backfil": 7200}'}
    result = subprocess.run([str(ROOT / "compose" / "app" / "start-worker"), "signals", "1"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "TASK_TIME_LIMITS: unknown run kind(s) ['backfil']" in result.stdout + result.stderr
