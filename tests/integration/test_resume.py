"""A run finishes and resumes from its records, with real workers, Redis and Postgres: the finish waits for an
instrument's last stage while the run progresses, counts what the records hold whatever the chord's results
say, and resumes an instrument missing from both once the run has been quiet for LOST_RUN_AFTER_S; the
minute job resumes a started run whose messages are gone."""

from __future__ import annotations

import json

import pytest
import redis
from kombu.transport.redis import Channel
from sqlalchemy import text

from services.core import keys
from services.core.pipeline.runs import RunRequest
from services.core.store.instruments import seed_instruments
from tests.utils.waiting import wait_until
from tests.utils.workers import running_worker

pytestmark = pytest.mark.integration

LABELS = ["BTC/USD 1h", "ETH/USD 1h"]
LEVELS = '{"stage": "levels", "status": "ok", "levels": 0}'


def _started_run(engine, run_id: str, minutes_ago: int) -> None:
    """A `levels` run over two instruments, started `minutes_ago`, BTC's levels recorded then, ETH's not."""
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, scope, state, created_at, started_at, batches)
            VALUES (:id, 'levels', '{}', 'STARTED', now() - make_interval(mins => :m),
                    now() - make_interval(mins => :m), CAST(:batches AS jsonb))"""),
                     {"id": run_id, "m": minutes_ago, "batches": json.dumps([LABELS])})
        conn.execute(text("""INSERT INTO pipeline_stage_results (run_id, instrument, stage, result, recorded_at)
            VALUES (:id, 'BTC/USD 1h', 'levels', CAST(:entry AS jsonb), now() - make_interval(mins => :m))"""),
                     {"id": run_id, "m": minutes_ago, "entry": LEVELS})


def _row(engine, run_id: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT state, stages, batches, finished_at, resumes FROM pipeline_runs "
                                      "WHERE id = :id"), {"id": run_id}).mappings().one())


def _waiting(client: redis.Redis, task: str) -> list[dict]:
    """The headers of every message of `task` a worker holds for its countdown (a retry's copy)."""
    messages = [json.loads(raw)[0] for raw in client.hvals(Channel.unacked_key)]
    return [m["headers"] for m in messages if m["headers"].get("task") == task and m["headers"].get("eta")]


def _queued(client: redis.Redis, queue: str) -> list[dict]:
    return [json.loads(raw)["headers"] for key in client.keys(f"{queue}*") if client.type(key) == b"list"
            for raw in client.lrange(key, 0, -1)]


@pytest.fixture()
def servers(fresh_servers, engine):
    redis_url, database_url = fresh_servers
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url, database_url, client
    client.close()


def test_a_finish_waits_for_an_unrecorded_last_stage_then_finishes_with_every_instrument_recorded(servers, engine):
    redis_url, database_url, client = servers
    _started_run(engine, "waiting-run", minutes_ago=0)
    with running_worker("ingest", redis_url, database_url, LOST_RUN_AFTER_S="60") as worker:
        # The chord's results name neither instrument: only the records count.
        worker.control.send_task("pipeline.finish", args=[[], "waiting-run", "levels", {}], queue="pipeline")
        wait_until(lambda: _waiting(client, "pipeline.finish"), "the finish to wait", 60, detail=worker.log)
        assert "1 instrument(s) lack their last stage; the finish waits" in worker.log()
        row = _row(engine, "waiting-run")
        assert row["state"] == "STARTED" and row["finished_at"] is None and not row["stages"]
        # Waiting is no failure: the copy keeps its retry count, so RETRY_POLICY's retries stay whole.
        assert [headers["retries"] for headers in _waiting(client, "pipeline.finish")] == [0]
        with engine.begin() as conn:
            conn.execute(text("""INSERT INTO pipeline_stage_results (run_id, instrument, stage, result)
                VALUES ('waiting-run', 'ETH/USD 1h', 'levels', CAST(:entry AS jsonb))"""), {"entry": LEVELS})
        wait_until(lambda: _row(engine, "waiting-run")["state"] != "STARTED", "the run to finish", 60,
                   detail=worker.log)
    row = _row(engine, "waiting-run")
    assert row["state"] == "SUCCESS", worker.log()
    assert sorted(row["stages"]) == LABELS
    assert all(entries[0]["stage"] == "levels" and entries[0]["status"] == "ok" for entries in row["stages"].values())


def test_an_instrument_missing_from_records_and_results_is_left_to_find_lost_which_resumes_it_and_it_finishes(
        servers, engine):
    redis_url, database_url, client = servers
    with engine.begin() as conn:
        seed_instruments(conn, "kraken", ["BTC/USD", "ETH/USD"], ["1h"])
    _started_run(engine, "quiet-run", minutes_ago=10)
    with running_worker("ingest", redis_url, database_url, LOST_RUN_AFTER_S="60") as worker:
        # The finish does not resume (a chain may still be alive): it stops waiting and writes nothing.
        left = worker.control.send_task("pipeline.finish", args=[[], "quiet-run", "levels", {}],
                                        queue="pipeline").get(timeout=60)
        assert left == {"state": "STARTED", "left_to": "pipeline.find_lost", "incomplete": ["ETH/USD 1h"]}
        assert _row(engine, "quiet-run")["batches"] == [LABELS]
        # The minute job, which reads the broker first, resumes it.
        assert worker.control.send_task("pipeline.find_lost", queue="pipeline").get(timeout=60)["resumed_runs"] \
            == ["quiet-run"]
        assert "run quiet-run resumed from its records (1 of 3)" in worker.log()
        assert "1 instrument(s) restart at levels (1)" in worker.log()
        row = _row(engine, "quiet-run")
        assert row["state"] == "STARTED" and row["batches"] == [LABELS, ["ETH/USD 1h"]]
        # A new batch (index 1): its stage task id is one a cancel revokes; its root id is the run's.
        queued = _queued(client, "indicators")
        assert [(h["id"], h["root_id"]) for h in queued] == [("quiet-run.1.levels", "quiet-run")]
        with running_worker("indicators", redis_url, database_url) as stages:
            wait_until(lambda: _row(engine, "quiet-run")["state"] != "STARTED", "the resumed run to finish", 90,
                       detail=lambda: worker.log() + stages.log())
    row = _row(engine, "quiet-run")
    assert row["state"] == "SUCCESS", row
    assert sorted(row["stages"]) == LABELS
    assert [entry["stage"] for entry in row["stages"]["ETH/USD 1h"]] == ["levels"]
    assert row["stages"]["BTC/USD 1h"] == [json.loads(LEVELS)]  # recorded before, not redone


def test_find_lost_resumes_a_started_run_keeping_its_lock_and_still_fails_a_run_queued_without_a_row(servers, engine):
    redis_url, database_url, client = servers
    with engine.begin() as conn:
        seed_instruments(conn, "kraken", ["BTC/USD", "ETH/USD"], ["1h"])
    _started_run(engine, "lost-run", minutes_ago=10)  # its messages are gone: the broker was flushed
    started, queued_only = RunRequest("levels"), RunRequest("ohlc", symbol="BTC/USD")
    client.set(started.dedup_key(), "lost-run")
    client.set(queued_only.dedup_key(), "queued-lost", ex=keys.RUN_LOCK_TTL_S - 600)  # queued 10 minutes ago
    client.set(keys.run_record("queued-lost"), json.dumps({"kind": "ohlc", "scope": queued_only.scope()}))
    with running_worker("ingest", redis_url, database_url, LOST_RUN_AFTER_S="60") as worker:
        result = worker.control.send_task("pipeline.find_lost", queue="pipeline").get(timeout=60)
        assert result["resumed_runs"] == ["lost-run"] and result["lost_runs"] == ["queued-lost"], worker.log()
        assert client.get(started.dedup_key()) == b"lost-run"  # still going: an identical request is a duplicate
        assert client.get(queued_only.dedup_key()) is None
        assert [h["id"] for h in _queued(client, "indicators")] == ["lost-run.1.levels"]
        with running_worker("indicators", redis_url, database_url) as stages:
            wait_until(lambda: _row(engine, "lost-run")["state"] != "STARTED", "the resumed run to finish", 90,
                       detail=lambda: worker.log() + stages.log())
    assert _row(engine, "lost-run")["state"] == "SUCCESS"
    assert client.get(started.dedup_key()) is None  # its finish freed the lock
    with engine.connect() as conn:
        queued = conn.execute(text("SELECT state, errors FROM pipeline_runs WHERE id = 'queued-lost'")).one()
    assert queued.state == "FAILURE" and "messages lost" in queued.errors[0]["error"]


def test_a_run_just_resumed_is_not_resumed_again_by_an_overlapping_finder(servers, engine):
    redis_url, database_url, client = servers
    with engine.begin() as conn:
        seed_instruments(conn, "kraken", ["BTC/USD", "ETH/USD"], ["1h"])
    _started_run(engine, "twice-run", minutes_ago=10)
    with running_worker("ingest", redis_url, database_url, LOST_RUN_AFTER_S="60") as worker:
        first = worker.control.send_task("pipeline.find_lost", queue="pipeline").get(timeout=60)
        assert first["resumed_runs"] == ["twice-run"], worker.log()
        # Its resumed stage lost again at once, before it recorded anything: the run still looks lost.
        client.delete(*client.keys("indicators*"))
        again = worker.control.send_task("pipeline.find_lost", queue="pipeline").get(timeout=60)
    assert again["resumed_runs"] == [] and again["lost_runs"] == [], worker.log()
    assert _row(engine, "twice-run")["batches"] == [LABELS, ["ETH/USD 1h"]]  # one resume, not two
    assert _row(engine, "twice-run")["resumes"] == 1
