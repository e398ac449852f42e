"""Scenario 5: the active beat killed with a standby running; the standby takes over and no slot runs twice."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from sqlalchemy import text

from tests.e2e.stack import http
from tests.faults.conftest import FAULT_SETTINGS
from tests.faults.scenario import API_TOKEN, RUN_BOUND_S, docker

pytestmark = pytest.mark.e2e

JOB = "faults-beat"
EVERY_S = 10
LOCK_S = int(FAULT_SETTINGS["BEAT_LOCK_TIMEOUT_S"])
# The standby takes the lock once the dead beat's expires, then fires the next due slot: the lock's
# lifetime plus one interval, and as much again for beat's own tick and the run's queueing.
TAKEOVER_BOUND_S = 2 * (LOCK_S + EVERY_S)
SYMBOL = "BTC/USD"


def _runs_since(scenario, since: float) -> list[tuple[str, float, str]]:
    """(id, created epoch s, state) of the runs created since `since` (only the job starts runs here)."""
    with scenario.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT id, extract(epoch FROM created_at)::float, state FROM pipeline_runs "
            "WHERE created_at >= to_timestamp(:since) ORDER BY created_at"), {"since": since}).all()]


def _active_beat(scenario) -> str | None:
    """The beat container whose log shows it sending the job: the one holding the lock."""
    for c in scenario.stack.containers():
        if c["Service"] == "beat" and f"Sending due task {JOB}" in docker("logs", c["Name"]):
            return c["Name"]
    return None


def _wait(probe, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    return None


def test_killing_the_active_beat_hands_the_schedule_to_the_standby_without_doubling_a_slot(scenario):
    scenario.symbols, scenario.expected = [SYMBOL], scenario.expected.only([SYMBOL])
    stack = scenario.stack
    stack.compose("up", "--detach", "--no-recreate", "--scale", "beat=2", "beat")
    stack.wait_healthy({"beat"}, timeout=180)
    job = {"name": JOB, "task": "all", "every": EVERY_S, "scope": {"symbol": SYMBOL, "timeframe": scenario.timeframe}}
    added = time.time()
    reply = http("POST", stack.url("API_PORT", "/api/schedules"), token=API_TOKEN, body=job)
    assert reply.status == 201, reply.text
    killed = None
    try:
        active = _wait(lambda: _active_beat(scenario), timeout=3 * EVERY_S + LOCK_S)
        assert active, "no beat sent the job"
        docker("kill", "--signal", "KILL", active)
        killed, started = time.time(), time.monotonic()
        scenario.row.scenario = "5 kill active beat"
        scenario.row.done = f"`docker kill -s KILL` the active one of 2 beats (job every {EVERY_S} s)"
        # Two runs created after the kill: the standby fires slot after slot, not just one catch-up.
        taken_over = _wait(lambda: len(_runs_since(scenario, killed)) >= 2, timeout=TAKEOVER_BOUND_S)
        if not taken_over:
            scenario.problems.append(f"the standby started under 2 runs within {TAKEOVER_BOUND_S} s of the kill")
    finally:
        http("PATCH", stack.url("API_PORT", f"/api/schedules/{JOB}"), token=API_TOKEN, body={"enabled": False})
    runs = _runs_since(scenario, added)
    for run_id, _, _ in runs:
        scenario.wait_terminal(run_id, RUN_BOUND_S, started)
    # This row's seconds: from the kill to the standby's first run (the takeover), not to a run's end.
    after = [at for _, at, _ in runs if at >= killed]
    scenario.row.seconds = after[0] - killed if taken_over else None
    # A slot fired twice (two beats both active, or a catch-up burst) shows as runs closer than the interval.
    created = [at for _, at, _ in runs]
    close = [(a, b) for a, b in pairwise(created) if b - a < EVERY_S / 2]
    if close:
        scenario.problems.append(f"runs {EVERY_S / 2:g} s or less apart (a slot fired twice): {close}")
    http("DELETE", stack.url("API_PORT", f"/api/schedules/{JOB}"), token=API_TOKEN)
    docker("start", active)
    stack.compose("up", "--detach", "--no-recreate", "--scale", "beat=1", "beat")
    scenario.judge()
