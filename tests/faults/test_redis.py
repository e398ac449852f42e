"""Scenario 2: Redis stopped for 10 s and 60 s (AOF on) under a running pipeline."""

from __future__ import annotations

import time

import pytest

from services.core.celery_app import PUBLISH_RETRY_BOUND_S
from tests.faults.scenario import RUN_BOUND_S, docker

pytestmark = pytest.mark.e2e

# (seconds Redis stays stopped, what is done). Both within PUBLISH_RETRY_BOUND_S, the outage publishes and
# result writes wait out; a longer one fails the stages that could not publish. A bare `docker restart redis`
# is not among them yet: it failed one of four runs (docs/reliability.md, "Not built yet").
OUTAGES = ((10, "`docker stop redis`, 10 s, `docker start`"), (60, "`docker stop redis`, 60 s, `docker start`"))
assert all(seconds < PUBLISH_RETRY_BOUND_S for seconds, _ in OUTAGES)


@pytest.mark.parametrize(("stopped_s", "done"), OUTAGES, ids=["stop-10s", "stop-60s"])
def test_a_redis_outage_mid_run_ends_in_success_with_every_candle_and_signal_once(scenario, stopped_s, done):
    run_id, duplicate = scenario.submit()
    assert not duplicate
    scenario.wait_mid_run(run_id, results=3)

    at = scenario.before_fault(run_id)
    started = time.monotonic()
    redis = scenario.container("redis")
    docker("stop", redis)
    time.sleep(stopped_s)
    docker("start", redis)
    scenario.row.scenario, scenario.row.done = "2 redis outage", f"{done} at {at}"
    body = scenario.wait_terminal(run_id, RUN_BOUND_S, started)

    scenario.expect_success(body)
    scenario.judge()
