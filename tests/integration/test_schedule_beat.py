"""A real beat and the live schedule: edits apply without a restart and survive restarts and a flushed Redis."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine

from services.core.pipeline import schedules
from services.core.pipeline.job_plan import DEFAULT_JOBS, seed_jobs
from services.core.priority import broker_priority
from tests.conftest import empty_database
from tests.utils.broker import queued_messages
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
EVERY_S = 10


class Beat:
    """One `celery beat` process as the container runs it, logging to a file."""

    def __init__(self, env: dict, logfile: Path) -> None:
        self.env, self.logfile, self.process = env, logfile, None

    def start(self, **env: str) -> None:
        with open(self.logfile, "a") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [str(BIN / "celery"), "-A", "services.scheduler.beat", "beat", "--loglevel", "INFO"],
                env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        self.process = None


@pytest.fixture()
def servers(redis_url, database_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    engine = create_engine(database_url)
    empty_database(engine)
    yield client, engine
    engine.dispose()
    client.close()


@pytest.fixture()
def beat(servers, redis_url, database_url, tmp_path):
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "BEAT_LOCK_TIMEOUT_S": "15",
           "TIMEZONE": "UTC"}
    process = Beat(env, tmp_path / "beat.log")
    yield process
    process.stop()


def wait_for(predicate, what: str, beat: Beat, timeout: float = 60.0):
    return wait_until(predicate, what, timeout, detail=lambda: "beat log:\n" + beat.logfile.read_text()[-3000:])


def sent(client: redis.Redis, queue: str, task: str) -> list[dict]:
    """Messages of `task` waiting in `queue` (no worker takes them), over all priority lists."""
    return [message for message in queued_messages(client, queue) if message["headers"]["task"] == task]


def jobs_by_name(client: redis.Redis) -> dict[str, dict]:
    return {job["name"]: job for job in schedules.list_jobs(client)}


def started(beat: Beat, client: redis.Redis) -> dict[str, dict]:
    """Start beat and wait for its start-up reconcile to have written the schedule."""
    marker = beat.logfile.read_text().count("schedule reconciled") if beat.logfile.exists() else 0
    beat.start()
    wait_for(lambda: beat.logfile.exists() and beat.logfile.read_text().count("schedule reconciled") > marker,
             "the start-up reconcile", beat)
    return jobs_by_name(client)


def test_beat_start_writes_the_default_jobs_and_a_job_added_while_it_runs_fires_without_a_restart(servers, beat):
    client, engine = servers
    jobs = started(beat, client)
    assert set(jobs) == set(DEFAULT_JOBS) and {job["source"] for job in jobs.values()} == {"default"}
    pid = beat.process.pid

    schedules.add_job(client, engine, {"name": "btc-probe", "task": "ohlc", "scope": {"symbol": "BTC/USD"},
                                       "every": EVERY_S, "priority": 8}, "cli", "UTC")
    (message, *_) = wait_for(lambda: sent(client, "pipeline", "pipeline.start"), "the new job's run", beat)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == ["ohlc", {"symbol": "BTC/USD"}] and kwargs == {"priority": 8}
    assert message["properties"]["priority"] == broker_priority(8)
    job = wait_for(lambda: (j := schedules.show_job(client, "btc-probe"))["last_run_id"] and j, "last_run_id", beat)
    assert job["last_run_id"] in {m["headers"]["id"] for m in sent(client, "pipeline", "pipeline.start")}
    assert beat.process.pid == pid and beat.process.poll() is None  # the same beat, never restarted


def test_a_changed_and_a_disabled_job_are_applied_by_the_running_beat(servers, beat):
    client, engine = servers
    started(beat, client)
    schedules.add_job(client, engine, {"name": "ledger", "task": "prune-ledger", "cron": "0 0 1 1 *"}, "cli", "UTC")
    schedules.change_job(client, engine, "ledger", {"every": EVERY_S}, "cli", "UTC")
    wait_for(lambda: sent(client, "ingest", "ingest.prune_ledger"), "the re-timed job's task", beat)

    schedules.change_job(client, engine, "ledger", {"enabled": False}, "cli", "UTC")
    time.sleep(6)  # one beat tick: a message sent just before the change may still arrive
    before = len(sent(client, "ingest", "ingest.prune_ledger"))
    time.sleep(2.5 * EVERY_S)
    assert len(sent(client, "ingest", "ingest.prune_ledger")) == before, "a disabled job kept firing"
    assert schedules.show_job(client, "ledger")["next_run_at"] is None


def test_operator_edits_survive_a_beat_restart(servers, beat):
    client, engine = servers
    started(beat, client)
    schedules.change_job(client, engine, "pipeline-all-hourly", {"cron": "7 * * * *", "priority": 8}, "cli", "UTC")
    schedules.change_job(client, engine, "prune-daily", {"enabled": False}, "cli", "UTC")
    schedules.delete_job(client, engine, "levels-weekly", "cli")
    schedules.add_job(client, engine, {"name": "eth-daily", "task": "signals", "scope": {"symbol": "ETH/USD"},
                                       "cron": "0 6 * * *", "timezone": "Europe/Berlin"}, "cli", "UTC")
    before = jobs_by_name(client)
    beat.stop()

    after = started(beat, client)
    assert after == before
    assert after["pipeline-all-hourly"]["cron"] == "7 * * * *"
    assert after["pipeline-all-hourly"]["source"] == "operator"
    assert after["prune-daily"]["enabled"] is False and "levels-weekly" not in after
    assert after["eth-daily"]["timezone"] == "Europe/Berlin"


def test_after_a_flushed_redis_beat_start_rebuilds_the_schedule_from_the_history(servers, beat):
    client, engine = servers
    started(beat, client)
    schedules.change_job(client, engine, "patterns-weekly", {"cron": "0 5 * * 2"}, "cli", "UTC")
    schedules.delete_job(client, engine, "levels-weekly", "cli")
    schedules.change_job(client, engine, "prune-daily", {"priority": 1}, "cli", "UTC")
    schedules.add_job(client, engine, {"name": "btc-4h", "task": "ohlc", "scope": {"symbol": "BTC/USD",
                                       "timeframe": "4h"}, "cron": "1 */4 * * *"}, "cli", "UTC")
    expected = {name: {k: v for k, v in job.items() if k not in ("next_run_at",)}
                for name, job in jobs_by_name(client).items()}
    beat.stop()
    client.flushdb()
    assert schedules.list_jobs(client) == []

    after = started(beat, client)
    assert {name: {k: v for k, v in job.items() if k not in ("next_run_at", "last_run_at", "last_run_id")}
            for name, job in after.items()} == {
        name: {k: v for k, v in job.items() if k not in ("last_run_at", "last_run_id")}
        for name, job in expected.items()}
    assert after["patterns-weekly"]["cron"] == "0 5 * * 2" and "levels-weekly" not in after
    assert after["prune-ledger-daily"]["source"] == "default"


def test_overrides_apply_over_defaults_but_not_over_an_operators_change(servers, beat):
    client, engine = servers
    started(beat, client)
    schedules.change_job(client, engine, "patterns-weekly", {"priority": 9}, "cli", "UTC")
    beat.stop()
    beat.env["SCHEDULE_OVERRIDES"] = json.dumps({"patterns-weekly": {"priority": 1}, "levels-weekly": {"priority": 2},
                                                  "prune-daily": None,
                                                  "eth": {"task": "ohlc", "scope": {"symbol": "ETH/USD"},
                                                          "cron": "3 * * * *"}})
    after = started(beat, client)
    assert (after["patterns-weekly"]["priority"], after["patterns-weekly"]["source"]) == (9, "operator")
    assert (after["levels-weekly"]["priority"], after["levels-weekly"]["source"]) == (2, "override")
    assert after["eth"]["source"] == "override" and "prune-daily" not in after
    # Reset hands a job to the deployment's definition: here the override.
    schedules.reset_job(client, engine, "patterns-weekly", seed_jobs(json.loads(beat.env["SCHEDULE_OVERRIDES"]), "UTC"),
                        "cli")
    assert schedules.show_job(client, "patterns-weekly")["priority"] == 1


def test_a_bad_timezone_stops_beat_naming_timezone(servers, beat):
    beat.start(TIMEZONE="Mars/Olympus")
    assert beat.process.wait(60) != 0
    assert "TIMEZONE" in beat.logfile.read_text()
