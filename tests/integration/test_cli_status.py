"""`candleflow status` as an operator runs it, against real Redis, Postgres and a worker: the screen, --json,
--watch until Ctrl-C, and a clear exit when Redis or Postgres is away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu import Exchange, Queue
from sqlalchemy import text

from services.cli.status import CLEAR_SCREEN
from services.core.celery_app import QUEUES, TASK_ROUTES
from services.core.priority import PRIORITY_STEPS, broker_priority, priority_keys
from tests.utils.servers import free_port
from tests.utils.waiting import wait_until
from tests.utils.workers import ROOT, running_worker

pytestmark = pytest.mark.integration

CANDLEFLOW = str(Path(sys.executable).parent / "candleflow")


def _env(redis_url: str, database_url: str) -> dict:
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ENVIRONMENT": "test"}


def status(redis_url: str, database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CANDLEFLOW, "status", *args], env=_env(redis_url, database_url), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def worker(fresh_servers):
    with running_worker("ingest", *fresh_servers, concurrency=1) as running:
        yield running


@pytest.fixture()
def stocked(fresh_servers, engine):
    """Three urgent messages on the signals queue, which no worker consumes; two active instruments (one
    with a candle closed an hour ago) and a retired one with an old candle; two finished runs of kind all."""
    redis_url, _ = fresh_servers
    sender = Celery(broker=redis_url)
    sender.conf.update(task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
                       task_routes=TASK_ROUTES, broker_transport_options={"priority_steps": PRIORITY_STEPS})
    for n in range(3):
        sender.send_task("signals.stage.signals", args=[{"n": n}], priority=broker_priority(9))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO instruments (id, exchange, symbol, timeframes, active) VALUES "
                          "(1, 'binance', 'BTC/USD', '{1h}', true), (2, 'binance', 'ETH/USD', '{1h}', true), "
                          "(3, 'binance', 'OLD/USD', '{1h}', false)"))
        conn.execute(text("INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume, "
                          "is_closed) VALUES "
                          "(1, '1h', date_trunc('hour', now()) - interval '2 hours', 1, 1, 1, 1, 1, true), "
                          "(3, '1h', now() - interval '30 days', 1, 1, 1, 1, 1, true)"))
        conn.execute(text("INSERT INTO pipeline_runs (id, kind, state, created_at, finished_at) VALUES "
                          "('run-old', 'all', 'SUCCESS', now() - interval '3 hours', now() - interval '3 hours'), "
                          "('run-new', 'all', 'PARTIAL', now() - interval '2 hours', now() - interval '2 hours')"))
    yield
    redis.Redis.from_url(redis_url).delete(*priority_keys("signals"))
    sender.close()


def _row(screen: str, first: str) -> list[str]:
    return next(line.split() for line in screen.splitlines() if line.split()[:1] == [first])


def test_the_screen_names_the_worker_and_the_queue_depth_it_really_has(worker, stocked, fresh_servers):
    result = status(*fresh_servers)
    assert result.returncode == 0, result.stderr
    screen = result.stdout
    assert _row(screen, worker.hostname) == [worker.hostname, "ingest,pipeline", "prefork", "1"]
    assert _row(screen, "signals") == ["signals", "3", "p9:3", "0", "0", "0", "0", "(NONE)"]
    assert _row(screen, "ingest") == ["ingest", "0", "-", "0", "0", "0", "1"]
    assert _row(screen, "all")[:2] == ["all", "PARTIAL"] and _row(screen, "all")[3] == "run-new"
    # The retired instrument's month-old candle is not the stalest: only active ones count.
    timeframe = _row(screen, "1h")
    assert timeframe[:2] == ["1h", "1/2"] and timeframe[2] == timeframe[3] and timeframe[2].endswith(("m", "h"))


def test_json_gives_scripts_the_same_figures(worker, stocked, fresh_servers):
    result = status(*fresh_servers, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [w["worker"] for w in document["workers"]] == [worker.hostname]
    signals = next(q for q in document["queues"] if q["queue"] == "signals")
    assert (signals["waiting"], signals["waiting_by_priority"], signals["consumers"]) == (3, {"9": 3}, 0)
    assert {q["queue"] for q in document["queues"]} == set(QUEUES)
    assert document["runs"][0]["run_id"] == "run-new"
    assert document["data"][0]["instruments"] == 2 and document["data"][0]["with_candles"] == 1


def test_watch_refreshes_until_ctrl_c_and_exits_zero(worker, fresh_servers):
    out = Path(tempfile.mkdtemp(prefix="cf-status-")) / "watch.out"
    with open(out, "w") as stdout:
        process = subprocess.Popen([CANDLEFLOW, "status", "--watch", "0.2"], env=_env(*fresh_servers), cwd=ROOT,
                                   stdout=stdout, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: out.read_text().count(CLEAR_SCREEN) >= 2, "two refreshes", 60, detail=out.read_text)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    screens = out.read_text().split(CLEAR_SCREEN)[1:]
    assert all(worker.hostname in screen for screen in screens[:2])
    assert "Traceback" not in out.read_text()


def test_redis_unreachable_is_a_clear_message_and_exit_one(fresh_servers):
    port = free_port()
    result = status(f"redis://127.0.0.1:{port}/0", fresh_servers[1])
    assert result.returncode == 1
    assert f"candleflow status: Redis at 127.0.0.1:{port}/0 unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_postgres_unreachable_is_a_clear_message_and_exit_one(fresh_servers):
    port = free_port()
    result = status(fresh_servers[0], f"postgresql://candleflow:secret@127.0.0.1:{port}/candleflow")
    assert result.returncode == 1
    assert f"candleflow status: Postgres at 127.0.0.1:{port}/candleflow unreachable" in result.stderr
    assert "secret" not in result.stderr and "Traceback" not in result.stderr
