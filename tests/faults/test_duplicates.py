"""Scenario 9: the same run asked for many times at once, and the same scheduled job fired twice: one run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.stack import http
from tests.faults.scenario import API_TOKEN, RUN_BOUND_S

pytestmark = pytest.mark.e2e

SUBMITTERS = 20
JOB = "faults-slot"


def test_twenty_concurrent_identical_submissions_make_one_run(scenario):
    scenario.row.scenario, scenario.row.done = "9 same run x20", f"{SUBMITTERS} threads POST the same `all` run"
    started = time.monotonic()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        replies = list(pool.map(lambda _: scenario.submit(), range(SUBMITTERS)))

    run_ids = {run_id for run_id, _ in replies}
    created = [run_id for run_id, duplicate in replies if not duplicate]
    if len(run_ids) != 1 or len(created) != 1:
        scenario.problems.append(f"{len(run_ids)} run ids, {len(created)} created: {sorted(run_ids)}")
    for run_id in run_ids:
        scenario.expect_success(scenario.wait_terminal(run_id, RUN_BOUND_S, started))
    scenario.judge()


def test_one_scheduled_job_fired_twice_at_once_makes_one_run(scenario):
    scenario.row.scenario, scenario.row.done = "9 same slot x2", "a schedule job's run fired by 2 threads at once"
    # Hourly, so beat itself does not fire it during the test: the two firings are the test's.
    job = {"name": JOB, "task": "all", "every": 3600,
           "scope": {"symbol": ",".join(scenario.symbols), "timeframe": scenario.timeframe}}
    reply = http("POST", scenario.stack.url("API_PORT", "/api/schedules"), token=API_TOKEN, body=job)
    assert reply.status == 201, reply.text
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(lambda _: http("POST", scenario.stack.url(
                "API_PORT", f"/api/schedules/{JOB}/run"), token=API_TOKEN), range(2)))
        assert all(r.status in (200, 202) for r in replies), [r.text for r in replies]
        run_ids = {r.body["task_id"] for r in replies}
        created = [r for r in replies if not r.body["duplicate"]]
        if len(run_ids) != 1 or len(created) != 1:
            scenario.problems.append(f"{len(run_ids)} run ids, {len(created)} created: {sorted(run_ids)}")
        for run_id in run_ids:
            scenario.expect_success(scenario.wait_terminal(run_id, RUN_BOUND_S, started))
    finally:
        http("DELETE", scenario.stack.url("API_PORT", f"/api/schedules/{JOB}"), token=API_TOKEN)
    scenario.judge()
