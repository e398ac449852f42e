"""The pipeline end to end, every component its own OS process: gunicorn API, three workers,
beat, the exchange simulator, real Redis and Postgres."""

from __future__ import annotations

import signal
import time

import pytest
import redis
from sqlalchemy import create_engine, text

from services.core.store.instruments import change_instrument, seed_instruments
from tests.utils.broker import queued
from tests.utils.rows import STAGE_ROWS, one_row
from tests.utils.stack import LocalStack

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]
SIM_NOW = "2024-03-01T00:30:00Z"


@pytest.fixture(scope="module")
def stack(fresh_servers):
    with LocalStack(*fresh_servers, SYMBOLS, SIM_NOW) as running:
        yield running


def _counts(database_url):
    return one_row(database_url, STAGE_ROWS)


def test_a_triggered_run_for_three_instruments_succeeds_with_per_stage_results(stack, database_url):
    status, body = stack.trigger("all")
    assert status == 202 and body["status"] == "success" and body["task_type"] == "all"
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS", run
    stages = {(entry["instrument"], entry["stage"]): entry for entry in run["result"]}
    assert set(stages) == {(f"{s} 1h", stage) for s in SYMBOLS for stage in ("ohlc", "indicators", "signals")}
    assert all(entry["status"] == "ok" for entry in stages.values())
    assert stages[("BTC/USD 1h", "ohlc")]["candles"] == 501  # 500 bars of lookback + the open one
    candles, indicators, signals, signalled = _counts(database_url)
    assert candles == 3 * 501 and indicators == 3 * 501
    assert signals > 0 and signalled == 3
    assert sum(stages[(f"{s} 1h", "signals")]["signals_created"] for s in SYMBOLS) == signals


def test_a_second_run_adds_no_duplicates(stack, database_url):
    before = _counts(database_url)
    _, body = stack.trigger("all")
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS"
    assert _counts(database_url) == before
    assert all(entry.get("signals_created", 0) == 0 for entry in run["result"])


WORKERS = ("worker-ingest", "worker-indicators", "worker-signals")


def test_an_instrument_the_exchange_does_not_list_ends_the_run_partial_naming_it_while_the_others_complete(
        stack, database_url):
    # As a typo in SYMBOLS would leave it: in the universe, but no market on the exchange.
    engine = create_engine(database_url)
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["DOGE/USD"], ["1h"])
    try:
        _, body = stack.trigger("all")
        run = stack.wait_for_run(body["task_id"])
    finally:
        with engine.begin() as conn:
            change_instrument(conn, "binance", "DOGE/USD", active=False)
        engine.dispose()
    assert run["status"] == "PARTIAL"
    assert "DOGE/USD" in run["error"] and "does not list symbol" in run["error"]
    done = {(e["instrument"], e["stage"]) for e in run["result"] if e["status"] == "ok"}
    assert {("BTC/USD 1h", "signals"), ("ETH/USD 1h", "signals")} <= done
    assert not any(e["instrument"] == "DOGE/USD 1h" and e["status"] == "ok" for e in run["result"])


def test_a_run_naming_only_instruments_outside_the_universe_ends_failure_at_the_plan(stack):
    # As a schedule job naming an instrument retired since would: the API refuses such a request up front.
    stack.control.send_task("pipeline.start", args=["ohlc", {"symbol": "ZZZ/USD"}], task_id="plan-refused",
                            queue="pipeline")
    run = stack.wait_for_run("plan-refused")
    assert run["status"] == "FAILURE"
    assert run["errors"] == [{"instrument": "ZZZ/USD *", "stage": "plan",
                              "error": "not an active instrument (retired, or never added to the universe)"}]


def test_a_run_waits_in_the_queue_while_the_indicators_worker_is_down_and_completes_after_restart(
        stack, redis_url):
    stack.stop("worker-indicators", signal.SIGKILL)
    client = redis.Redis.from_url(redis_url)
    status, body = stack.trigger("indicators")
    assert status == 202
    deadline = time.monotonic() + 30
    while queued(client, "indicators") < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    # All instruments of one timeframe fit one batch: one stage task waits, queued, for a consumer.
    assert queued(client, "indicators") == 1, "the batch's stage task waits, queued, for a consumer"
    status, waiting = stack.trigger("indicators")
    assert waiting["task_id"] == body["task_id"], "a duplicate request returns the running run"
    stack.start("worker-indicators")
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS"
    assert queued(client, "indicators") == 0


def test_a_database_blip_mid_stage_is_retried_and_the_run_still_succeeds(stack, database_url):
    from sqlalchemy import create_engine

    _, synced = stack.trigger("ohlc")  # instruments with candles, whatever ran before
    assert stack.wait_for_run(synced["task_id"])["status"] == "SUCCESS"
    engine = create_engine(database_url)
    killed = 0
    with engine.connect() as locker:
        # Hold the watermarks table so the stage's first query waits, then cut that session:
        # to the worker it is a Postgres connection dropped mid-stage.
        transaction = locker.begin()
        locker.execute(text("LOCK TABLE stage_watermarks IN ACCESS EXCLUSIVE MODE"))
        _, body = stack.trigger("indicators")
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            # Activity statistics are a snapshot per transaction: take a fresh one each time.
            locker.execute(text("SELECT pg_stat_clear_snapshot()"))
            killed = locker.execute(text("""
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()""")).scalar_one()
            time.sleep(0.1)
        transaction.rollback()
    engine.dispose()
    assert killed >= 1, "the stage reached the database and was cut off"
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS", run
    assert "OperationalError" in stack.log("worker-indicators") and "retrying" in stack.log("worker-indicators")


def test_the_worker_logs_show_the_run(stack, database_url):
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    with engine.connect() as conn:
        run_id = conn.execute(text("SELECT id FROM pipeline_runs ORDER BY created_at LIMIT 1")).scalar_one()
    engine.dispose()
    # Any worker may take a run's start and finish off the pipeline queue.
    logs = "".join(stack.log(worker) for worker in WORKERS)
    assert f"run {run_id}" in logs and "batch chain(s) queued" in logs  # queued and finished, by id
    assert "indicators.stage.indicators" in stack.log("worker-indicators")
