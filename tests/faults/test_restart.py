"""Scenario 10: the whole stack restarted, or taken down and up again (volumes kept), under a running pipeline."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import FAULT_SETTINGS
from tests.faults.scenario import RUN_BOUND_S

pytestmark = pytest.mark.e2e

# An interrupted run either resumes (a run's time) or, its messages gone, is failed by the minute job
# find-lost-runs once it has shown no progress for LOST_RUN_AFTER_S.
INTERRUPTED_BOUND_S = int(FAULT_SETTINGS["LOST_RUN_AFTER_S"]) + 60 + RUN_BOUND_S
# The repair job's time to fill windows the restarting simulator did not serve (as in scenario 4).
REPAIR_BOUND_S = 120.0

ACTIONS = {
    "compose restart": (("restart",),),
    "compose down; up": (("down",), ("up", "--detach")),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_whole_stack_interrupted_mid_run_loses_nothing_and_blocks_no_new_run(scenario, action):
    run_id, duplicate = scenario.submit()
    assert not duplicate
    scenario.wait_mid_run(run_id)

    at = scenario.before_fault(run_id)
    started = time.monotonic()
    for command in ACTIONS[action]:
        scenario.stack.compose(*command)
    scenario.row.scenario, scenario.row.done = f"10 {action}", f"`docker {action}` at {at}"
    scenario.stack.wait_healthy(timeout=300)
    interrupted = scenario.wait_terminal(run_id, INTERRUPTED_BOUND_S, started)
    # Resumed, or ended naming why: the lost-run sweeper's "messages lost", or PARTIAL with windows the
    # restarting simulator did not serve ledgered for repair (the repair job below fills them).
    if interrupted is not None and interrupted["status"] != "SUCCESS" and not interrupted.get("error"):
        scenario.problems.append(f"interrupted run ended {interrupted['status']} without a reason")
    if interrupted is not None:
        scenario.row.done += f", run {interrupted['status']}"
    # A window ledgered failed is filled by the repair job, not by the re-run: an incremental fetch
    # starts after the newest stored bar, so a hole before it (the first of two windows failed, the
    # second served) stays until repaired, as on the daily schedule.
    failed = scenario.failed_windows()
    if failed:
        scenario.row.done += f" ({failed} windows ledgered failed, repaired)"
        scenario.repair(REPAIR_BOUND_S)

    # The run's lock must not outlive it: the same run again is a new run, and it completes the data.
    seconds = scenario.row.seconds
    rerun, duplicate = scenario.submit()
    if duplicate:
        scenario.problems.append(f"a new identical run was refused as a duplicate of {rerun}")
    else:
        scenario.expect_success(scenario.wait_terminal(rerun, RUN_BOUND_S, time.monotonic()))
    scenario.row.seconds = seconds
    scenario.judge()
