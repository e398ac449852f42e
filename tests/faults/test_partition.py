"""Scenario 6: a worker's network cut mid-run (`docker network disconnect`), then connected again.

The worker loses Redis and Postgres at once and answers no broadcast, so after DEAD_WORKER_AFTER_S the
sweeper hands its unacknowledged batch back to the queue; whichever copy runs, and however often, the
candles and signals are stored once and the run ends SUCCESS.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from tests.faults.scenario import RUN_BOUND_S, docker

pytestmark = pytest.mark.e2e

# Longer than the dead-worker grace (45 s) and a sweep (60 s): the partitioned worker's message is handed
# back while it is still cut off, so the scenario covers both copies.
PARTITION_S = 90
WORKER = "worker-indicators"


def _networks(container: str) -> list[str]:
    return docker("inspect", "--format", "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
                  container).split()


def test_a_worker_partitioned_mid_run_and_reconnected_leaves_every_candle_and_signal_once(scenario):
    run_id, duplicate = scenario.submit()
    assert not duplicate
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # an indicators batch in flight: ingest has handed one over
        with scenario.engine.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM pipeline_stage_results WHERE run_id = :id AND stage = 'ohlc'"),
                            {"id": run_id}).scalar_one():
                break
        time.sleep(0.2)

    at = scenario.before_fault(run_id)
    worker = scenario.container(WORKER)
    networks = _networks(worker)
    assert networks, f"{worker} is on no network"
    started = time.monotonic()
    for network in networks:
        docker("network", "disconnect", network, worker)
    time.sleep(PARTITION_S)
    for network in networks:
        docker("network", "connect", network, worker)
    scenario.row.scenario = "6 worker partitioned"
    scenario.row.done = f"`docker network disconnect` {WORKER} at {at}, {PARTITION_S} s, then `connect`"
    body = scenario.wait_terminal(run_id, PARTITION_S + RUN_BOUND_S, started)

    scenario.expect_success(body)
    scenario.judge()
