"""Runs under operator control with real workers, beat, Redis and Postgres: cancel mid-run, jump the queue,
run later, lost runs found by the beat's minute job."""

from __future__ import annotations

from datetime import datetime

import pytest
import redis

from services.cli.procfile import ProcessSpec
from services.core.pipeline.runs import RunRequest
from services.core.priority import PRIORITY_STEPS, priority_keys
from tests.utils.broker import queued
from tests.utils.rows import STAGE_ROWS, one_row
from tests.utils.stack import TOKEN, LocalStack, http
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]
LABELS = [f"{symbol} 1h" for symbol in SYMBOLS]
SIM_NOW = "2024-03-01T00:30:00Z"
WORKERS = ("worker-ingest", "worker-indicators", "worker-signals")


@pytest.fixture(scope="module")
def stack(fresh_servers):
    # Two instruments a batch: three instruments make two batch chains, so ids of both are revoked.
    # The shortest quiet time allowed, so the beat's minute job finds a lost run within two minutes.
    env = {"PIPELINE_BATCH_SIZE": "2", "LOST_RUN_AFTER_S": "60"}
    with LocalStack(*fresh_servers, SYMBOLS, SIM_NOW, extra_env=env) as running:
        yield running


@pytest.fixture()
def broker(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _counts(database_url) -> tuple[int, int, int]:
    """Candles, indicator values and signals stored."""
    return one_row(database_url, STAGE_ROWS)[:3]


def _status(stack, run_id: str) -> dict:
    status, body = http("GET", f"{stack.api}/api/runs/{run_id}")
    assert status == 200, body
    return body


def _until(condition, what: str, stack, timeout: float = 120.0):
    """Poll `condition` until it returns something truthy; fail naming `what` otherwise."""
    return wait_until(condition, what, timeout, interval=0.3, detail=lambda: f"logs in {stack.logs}")


def _worker_logs(stack) -> str:
    return "".join(stack.log(name) for name in WORKERS if (stack.logs / f"{name}.log").exists())


def _restart_workers(stack) -> None:
    for worker in WORKERS:
        if worker in stack.processes:
            stack.stop(worker)
        stack.start(worker)
    stack.wait_for_consumers({"ingest", "indicators", "signals", "pipeline"})


def test_a_run_cancelled_mid_run_keeps_whole_stages_and_a_rerun_completes_it_without_duplicates(
        stack, broker, database_url):
    stack.stop("worker-indicators")  # the run's ohlc stage completes, its indicators stage waits in the queue
    status, body = stack.trigger("all")
    assert status == 202
    run_id = body["task_id"]
    _until(lambda: queued(broker, "indicators") == 2, "both batches' indicators tasks queued", stack)
    ohlc_done = [e for e in _status(stack, run_id)["result"] if e["stage"] == "ohlc" and e["status"] == "ok"]
    assert len(ohlc_done) == 3
    before = _counts(database_url)
    assert before == (3 * 501, 0, 0)  # every instrument's candles whole, nothing of the later stages

    status, cancelled = http("POST", f"{stack.api}/api/runs/{run_id}/cancel", token=TOKEN)
    assert status == 200, cancelled
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelled_by"] == "api-token"
    assert cancelled["completed"] == [] and cancelled["not_completed"] == LABELS
    assert {(e["instrument"], e["stage"]): e["status"] for e in cancelled["result"]} == {
        **{(label, "ohlc"): "ok" for label in LABELS}, **{(label, "indicators"): "cancelled" for label in LABELS},
        **{(label, "signals"): "cancelled" for label in LABELS}}
    assert broker.get(RunRequest("all").dedup_key()) is None

    # The indicators worker comes back and receives the cancelled run's tasks: each is dropped as
    # revoked (the revocation reached it from the other workers) or runs and finds the run cancelled.
    stack.start("worker-indicators")
    for batch in (0, 1):
        task = f"indicators.stage.indicators[{run_id}.{batch}.indicators]"
        _until(lambda task=task: f"Discarding revoked task: {task}" in stack.log("worker-indicators")
               or f"Task {task} succeeded" in stack.log("worker-indicators"), f"{task} settled", stack)
    _until(lambda: queued(broker, "indicators") == 0 and queued(broker, "signals") == 0, "queues drained", stack)
    assert _counts(database_url) == before
    assert _status(stack, run_id)["status"] == "CANCELLED"

    status, body = stack.trigger("all")
    assert status == 202 and body["task_id"] != run_id, "the identical request starts a new run at once"
    rerun = stack.wait_for_run(body["task_id"])
    assert rerun["status"] == "SUCCESS", rerun
    candles, indicators, signals = _counts(database_url)
    assert candles == 3 * 501 and indicators == 3 * 501 and signals > 0  # completed, no duplicate candle
    assert f"ingest.stage.ohlc[{body['task_id']}.1.ohlc]" in stack.log("worker-ingest")  # the ids a cancel revokes


def test_an_urgent_run_submitted_after_a_backlog_finishes_before_the_backlog(stack):
    for worker in WORKERS:
        stack.stop(worker)
    backlog = [stack.trigger("ohlc", symbol=symbol, priority="0")[1]["task_id"] for symbol in SYMBOLS]
    backlog.append(stack.trigger("ohlc", timeframe="1h", priority="0")[1]["task_id"])
    status, urgent = stack.trigger("ohlc", priority="9")
    assert status == 202 and urgent["priority"] == 9
    # One worker process consuming the pipeline and ingest queues: it takes the most urgent message of both.
    stack.specs["worker-solo"] = ProcessSpec("worker-solo", "compose/app/start-worker ingest 1")
    stack.start("worker-solo")
    try:
        finished = {run_id: stack.wait_for_run(run_id, timeout=180) for run_id in [*backlog, urgent["task_id"]]}
    finally:
        stack.stop("worker-solo")
        _restart_workers(stack)
    assert all(run["status"] == "SUCCESS" for run in finished.values()), finished
    done = {run_id: datetime.fromisoformat(run["finished_at"]) for run_id, run in finished.items()}
    assert all(done[urgent["task_id"]] < done[run_id] for run_id in backlog), done
    assert all(finished[run_id]["priority"] == 0 for run_id in backlog)


def test_a_delayed_run_is_scheduled_at_once_and_starts_at_its_time(stack):
    status, body = stack.trigger("ohlc", symbol="BTC/USD", countdown="6")
    assert status == 202
    run_id = body["task_id"]
    assert _status(stack, run_id)["status"] == "SCHEDULED"
    _, listed = http("GET", f"{stack.api}/api/runs?state=SCHEDULED")
    assert run_id in [run["task_id"] for run in listed["runs"]]
    run = stack.wait_for_run(run_id)
    assert run["status"] == "SUCCESS", run
    scheduled_for = datetime.fromisoformat(body["scheduled_for"])
    assert datetime.fromisoformat(run["scheduled_for"]) == scheduled_for
    assert datetime.fromisoformat(run["started_at"]) >= scheduled_for


def test_a_delayed_run_cancelled_before_its_time_never_starts(stack):
    status, body = stack.trigger("ohlc", symbol="ETH/USD", countdown="4")
    run_id = body["task_id"]
    status, cancelled = http("POST", f"{stack.api}/api/runs/{run_id}/cancel", token=TOKEN)
    assert status == 200 and cancelled["status"] == "CANCELLED"
    task = f"pipeline.start[{run_id}]"
    _until(lambda: f"Discarding revoked task: {task}" in _worker_logs(stack)
           or f"run {run_id} is CANCELLED; its start does nothing" in _worker_logs(stack), f"{task} settled", stack)
    after = _status(stack, run_id)
    assert after["status"] == "CANCELLED" and after["started_at"] is None and after["result"] == []


def test_a_run_whose_queued_indicators_tasks_were_purged_is_resumed_by_the_beats_job_and_succeeds_once(
        stack, broker, database_url):
    stack.stop("worker-indicators")
    try:
        status, body = stack.trigger("all")
        assert status == 202
        run_id = body["task_id"]
        _until(lambda: queued(broker, "indicators") == 2, "both batches' indicators tasks queued", stack)
        broker.delete(*priority_keys("indicators", PRIORITY_STEPS))  # what `celery purge -Q indicators` does
        _until(lambda: f"run {run_id} resumed from its records" in _worker_logs(stack), "the run resumed", stack,
               timeout=300)
        assert "3 instrument(s) restart at indicators (3)" in _worker_logs(stack)
        assert queued(broker, "indicators") == 2  # two new batches of at most PIPELINE_BATCH_SIZE (2)
        assert broker.get(RunRequest("all").dedup_key()) == run_id.encode()  # still going: its lock is kept
    finally:
        stack.start("worker-indicators")
    run = stack.wait_for_run(run_id, timeout=300)
    assert run["status"] == "SUCCESS", run
    assert run["resumes"] == 1 and run["resumed_at"] is not None  # the status says it was resumed
    entries = {(e["instrument"], e["stage"]): e for e in run["result"]}
    assert set(entries) == {(label, stage) for label in LABELS for stage in ("ohlc", "indicators", "signals")}
    assert all(entry["status"] == "ok" for entry in entries.values())
    for batch in (2, 3):  # the resumed batches ran, under ids appended to the run's batches
        assert f"indicators.stage.indicators[{run_id}.{batch}.indicators]" in stack.log("worker-indicators")
    candles, indicators, signals = after = _counts(database_url)
    assert candles == 3 * 501 and indicators == 3 * 501 and signals > 0  # every bar once, whole
    assert broker.get(RunRequest("all").dedup_key()) is None
    status, again = stack.trigger("all")
    assert status == 202 and again["task_id"] != run_id, "the identical request starts a new run at once"
    assert stack.wait_for_run(again["task_id"])["status"] == "SUCCESS"
    assert _counts(database_url) == after  # the same bars again: no signal was missing or doubled
