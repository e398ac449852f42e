"""Run bookkeeping against real Postgres and Redis: lost runs are failed (a started one once its resumes are
spent), their locks freed; cancelled runs stay so."""

from __future__ import annotations

import json

import pytest
import redis
from sqlalchemy import text

from services.core import keys
from services.core.pipeline.runs import RunRequest

pytestmark = pytest.mark.integration


@pytest.fixture()
def pipeline(server_settings, engine, monkeypatch):
    """The pipeline's tasks, run in this process, on a Celery app of the suite's servers: the module-level
    app was built at import, which may have been before they started (find_lost asks the workers and a
    resume queues a finish, both through it)."""
    from services.core.celery_app import create_celery
    from services.core.pipeline import dispatch
    from services.core.pipeline import tasks as module

    app = create_celery()
    for owner in (module, dispatch):
        monkeypatch.setattr(owner, "app", app)
    yield module
    app.close()


def test_a_run_lost_in_flight_is_failed_by_the_prune_job_and_its_lock_freed(pipeline, engine, redis_url):
    client = redis.Redis.from_url(redis_url)
    lock = RunRequest("all").dedup_key()
    client.set(lock, "lost-run")
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, scope, state, started_at) VALUES
            ('lost-run', 'all', '{}', 'STARTED', now() - interval '7 hours'),
            ('young-run', 'ohlc', '{}', 'STARTED', now() - interval '1 hour')"""))
    result = pipeline.prune_history.run()
    assert result["lost_runs"] == ["lost-run"]
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT id, state FROM pipeline_runs")).all())
    assert states == {"lost-run": "FAILURE", "young-run": "STARTED"}
    assert client.get(lock) is None


def _message(run_id: str, task_id: str | None = None) -> str:
    """A Celery message as kombu stores it, reduced to the headers the lost-run check reads."""
    return json.dumps({"headers": {"id": task_id or run_id, "root_id": run_id, "task": "x"}, "body": ""})


def test_runs_whose_messages_vanished_and_cannot_be_resumed_are_failed_within_minutes_and_the_others_left_alone(
        pipeline, engine, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, scope, state, created_at, started_at, scheduled_for)
            VALUES ('purged', 'all', '{}', 'STARTED', now() - interval '10 min', now() - interval '10 min', NULL),
                   ('working', 'ohlc', '{}', 'STARTED', now() - interval '1 hour', now() - interval '1 hour', NULL),
                   ('waiting', 'levels', '{}', 'STARTED', now() - interval '1 hour', now() - interval '1 hour', NULL),
                   ('young', 'signals', '{}', 'STARTED', now(), now(), NULL),
                   ('later', 'patterns', '{}', 'SCHEDULED', now() - interval '1 hour', NULL,
                    now() + interval '1 hour')"""))
        # Started with planned batches, so resumable, but resumed RUN_RESUME_LIMIT (3) times already.
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, scope, state, created_at, started_at, batches,
                                                        resumes, resumed_at)
            VALUES ('resumed-enough', 'regime', '{}', 'STARTED', now() - interval '10 min', now() - interval '10 min',
                    '[["BTC/USD 1h"]]', 3, now() - interval '10 min')"""))
    client.set(RunRequest("all").dedup_key(), "purged")
    client.set(RunRequest("regime").dedup_key(), "resumed-enough")
    # A stage task being worked on (acks_late: in the unacked hash), another waiting at priority 9.
    client.hset("unacked", "tag-1", json.dumps([json.loads(_message("working", "working.0.ohlc")), "", "ingest"]))
    client.lpush("indicators\x06\x169", _message("waiting", "waiting.0.levels"))
    # Queued by the API, never started: a lock and a record, aged 10 minutes; one still has its message.
    for run_id, symbol in (("queued-purged", "BTC/USD"), ("queued-waiting", "ETH/USD")):
        request = RunRequest("ohlc", symbol=symbol)
        client.set(request.dedup_key(), run_id, ex=keys.RUN_LOCK_TTL_S - 600)
        client.set(keys.run_record(run_id), json.dumps({"kind": "ohlc", "scope": request.scope(), "priority": 5}))
    client.lpush("pipeline\x06\x164", _message("queued-waiting"))

    result = pipeline.find_lost.run()

    # A started row without a recorded plan (nothing to resume from) and a run queued without a row are failed.
    assert sorted(result["lost_runs"]) == ["purged", "queued-purged", "resumed-enough"]
    assert result["resumed_runs"] == []
    with engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(text("SELECT id, state, errors FROM pipeline_runs"))}
    assert {run_id: row.state for run_id, row in rows.items()} == {
        "purged": "FAILURE", "queued-purged": "FAILURE", "working": "STARTED", "waiting": "STARTED",
        "young": "STARTED", "later": "SCHEDULED", "resumed-enough": "FAILURE"}
    assert "messages lost" in rows["purged"].errors[0]["error"]
    assert "messages lost" in rows["queued-purged"].errors[0]["error"]
    assert rows["resumed-enough"].errors[0]["error"].startswith("messages lost: none of the run's messages")
    assert rows["resumed-enough"].errors[0]["error"].endswith("resumed 3 times (RUN_RESUME_LIMIT)")
    assert client.get(RunRequest("all").dedup_key()) is None
    assert client.get(RunRequest("regime").dedup_key()) is None
    assert client.get(RunRequest("ohlc", symbol="BTC/USD").dedup_key()) is None
    assert client.get(RunRequest("ohlc", symbol="ETH/USD").dedup_key()) == b"queued-waiting"
    assert pipeline.find_lost.run() == {"restored_tasks": [], "lost_runs": [], "resumed_runs": []}  # failed once


def test_a_started_run_whose_plan_refused_everything_and_whose_finish_was_lost_is_finished_not_failed(
        pipeline, engine, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    refusal = {"stage": "plan", "status": "failed", "error": "not an active instrument"}
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, scope, state, created_at, started_at, batches)
            VALUES ('all-refused', 'ohlc', '{"symbol": "DOGE/USD"}', 'STARTED', now() - interval '10 min',
                    now() - interval '10 min', '[]')"""))
        conn.execute(text("""INSERT INTO pipeline_stage_results (run_id, instrument, stage, result, recorded_at)
            VALUES ('all-refused', 'DOGE/USD *', 'plan', CAST(:r AS jsonb), now() - interval '10 min')"""),
                     {"r": json.dumps(refusal)})

    result = pipeline.find_lost.run()

    assert result["resumed_runs"] == ["all-refused"] and result["lost_runs"] == []
    # The resume queued the finish alone; run here, it ends the run from its records.
    assert pipeline.finish_run.run([], "all-refused", "ohlc", {"symbol": "DOGE/USD"})["state"] == "FAILURE"
    with engine.connect() as conn:
        errors = conn.execute(text("SELECT errors FROM pipeline_runs WHERE id = 'all-refused'")).scalar_one()
    assert [(e["instrument"], e["stage"]) for e in errors] == [("DOGE/USD *", "plan")]  # the refusal, not "lost"


def _cancelled_run(engine, run_id: str, kind: str = "all") -> None:
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, scope, state, started_at, finished_at,
                                                        cancelled_by, cancelled_at, batches)
            VALUES (:id, :kind, '{}', 'CANCELLED', now(), now(), 'cli', now(), '[["BTC/USD 1h"]]')"""),
            {"id": run_id, "kind": kind})


def test_the_start_of_a_cancelled_run_does_nothing_and_takes_no_lock(pipeline, engine, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    _cancelled_run(engine, "cancelled-early")
    result = pipeline.start_run.apply(args=("all", {}), task_id="cancelled-early").get()
    assert result == {"run_id": "cancelled-early", "state": "CANCELLED"}
    assert client.get(RunRequest("all").dedup_key()) is None
    assert client.get(keys.run_dispatched("cancelled-early")) is None


def test_a_stage_of_a_cancelled_run_does_no_work_and_its_finish_keeps_it_cancelled(pipeline, engine):
    from services.core.pipeline.chain import new_carry, run_stage
    from services.core.pipeline.stages import STAGES

    _cancelled_run(engine, "cancelled-mid")
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO pipeline_stage_results (run_id, instrument, stage, result)
            VALUES ('cancelled-mid', 'BTC/USD 1h', 'ohlc', '{"stage": "ohlc", "status": "ok"}')"""))
    calls = []
    carry = run_stage(new_carry("cancelled-mid", "kraken", ["BTC/USD"], "1h", {}), STAGES["indicators"],
                      lambda symbols, timeframe, **_: calls.append(symbols) or {})
    assert calls == [] and carry["outcomes"]["BTC/USD"]["stages"] == []
    assert pipeline.finish_run.run([carry], "cancelled-mid", "all", {}) == {"state": "CANCELLED"}
    pipeline.abort_run.run(run_id="cancelled-mid", kind="all", scope={})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM pipeline_runs")).scalar_one() == "CANCELLED"
        assert conn.execute(text("SELECT count(*) FROM pipeline_stage_results")).scalar_one() == 1
