"""Two beat processes at once: RedBeat's lock lets only one of them schedule."""

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

from services.core.pipeline.job_plan import DEFAULT_JOBS
from tests.utils.broker import queued, queued_messages

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
EVERY_S = 10  # the schedule's floor


def _beat(env: dict, logfile: Path) -> subprocess.Popen:
    with open(logfile, "w") as log:
        return subprocess.Popen([str(BIN / "celery"), "-A", "services.scheduler.beat", "beat", "--loglevel", "INFO"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_two_beats_start_each_scheduled_job_exactly_once(redis_url, database_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    # Only one fast probe job (a maintenance task no worker takes); the real table is switched off.
    overrides = {name: None for name in DEFAULT_JOBS}
    overrides["probe"] = {"task": "prune-ledger", "every": EVERY_S}
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url,
           "SCHEDULE_OVERRIDES": json.dumps(overrides), "BEAT_LOCK_TIMEOUT_S": "15"}
    beats = [_beat(env, tmp_path / f"beat{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 60
        while queued(client, "ingest") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        first = queued(client, "ingest")
        time.sleep(4 * EVERY_S)
        sent = queued(client, "ingest") - first
        elapsed = time.monotonic() - started
    finally:
        for beat in beats:
            os.killpg(beat.pid, signal.SIGTERM)
            beat.wait(20)
    assert first >= 1, "the schedule fired at all"
    # One beat sends elapsed/EVERY_S messages; two unlocked beats would send twice that.
    assert 0.5 * elapsed / EVERY_S <= sent <= elapsed / EVERY_S + 1.5
    tasks = {message["headers"]["task"] for message in queued_messages(client, "ingest")}
    assert tasks == {"ingest.prune_ledger"}
