"""Scenario 3: Postgres restarted under a running pipeline; the stages hitting the outage are retried."""

from __future__ import annotations

import time

import pytest

from tests.faults.scenario import RUN_BOUND_S, docker

pytestmark = pytest.mark.e2e

# Stage results recorded before the restart (of 15): while ingest still runs, then with indicators and signals
# in flight. One restart point alone hits a stage's database access only sometimes.
RESTART_AFTER = (1, 5, 9)


@pytest.mark.parametrize("results", RESTART_AFTER)
def test_a_postgres_restart_mid_run_ends_in_success_with_every_candle_and_signal_once(scenario, results):
    run_id, duplicate = scenario.submit()
    assert not duplicate
    scenario.wait_mid_run(run_id, results=results)

    at = scenario.before_fault(run_id)
    started = time.monotonic()
    docker("restart", scenario.container("postgres"))
    scenario.row.scenario, scenario.row.done = "3 postgres restart", f"`docker restart` postgres at {at}"
    body = scenario.wait_terminal(run_id, RUN_BOUND_S, started)

    scenario.expect_success(body)
    scenario.judge()
