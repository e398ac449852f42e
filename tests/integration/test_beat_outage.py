"""Beat across a Redis outage longer than its lock: it keeps running, takes its lock back, and the schedule
fires again once Redis is back (before, the first failed tick ended the process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from services.core.keys import REDBEAT_LOCK
from services.core.pipeline.job_plan import DEFAULT_JOBS
from tests.utils.broker import queued
from tests.utils.servers import restartable_redis
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
EVERY_S = 10  # the schedule's floor
LOCK_S = 15  # BEAT_LOCK_TIMEOUT_S's floor
OUTAGE_S = LOCK_S + 5  # the lock expires while Redis is away


def test_beat_rides_out_a_redis_outage_and_fires_the_schedule_again(database_url, tmp_path):
    overrides = {name: None for name in DEFAULT_JOBS}
    overrides["probe"] = {"task": "prune-ledger", "every": EVERY_S}  # a maintenance task no worker takes
    logfile = tmp_path / "beat.log"
    with restartable_redis() as server:
        client = redis.Redis.from_url(server.url)
        env = {**os.environ, "REDIS_URL": server.url, "DATABASE_URL": database_url,
               "SCHEDULE_OVERRIDES": json.dumps(overrides), "BEAT_LOCK_TIMEOUT_S": str(LOCK_S)}
        with open(logfile, "w") as log:
            beat = subprocess.Popen([str(BIN / "celery"), "-A", "services.scheduler.beat", "beat", "--loglevel",
                                     "INFO"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: queued(client, "ingest") >= 1, "the schedule to fire", 60, detail=logfile.read_text)
            server.stop()
            time.sleep(OUTAGE_S)
            server.start()
            before = queued(client, "ingest")
            wait_until(lambda: queued(client, "ingest") > before, "the schedule to fire after the outage", 4 * EVERY_S,
                       detail=logfile.read_text)
            assert beat.poll() is None, logfile.read_text()
            assert client.exists(REDBEAT_LOCK), logfile.read_text()
        finally:
            if beat.poll() is None:
                os.killpg(beat.pid, signal.SIGTERM)
                beat.wait(20)
