"""Scenario 2: Redis stopped for 10 s and 60 s, and restarted, under a running pipeline (AOF on): the run
ends SUCCESS with every candle and signal once, and the API, the exporter and the beat reconnect by themselves."""

from __future__ import annotations

import time

import pytest

from services.core.celery_app import PUBLISH_RETRY_BOUND_S
from tests.faults.reconnect import ReconnectWatch, reconnect_probes
from tests.faults.scenario import RUN_BOUND_S, docker

pytestmark = pytest.mark.e2e

# (seconds Redis stays stopped, what is done); None: `docker restart`, stopped only as long as it takes. All
# within PUBLISH_RETRY_BOUND_S, the outage publishes and result writes wait out.
OUTAGES = ((None, "`docker restart redis`"), (10, "`docker stop redis`, 10 s, `docker start`"),
           (60, "`docker stop redis`, 60 s, `docker start`"))
assert all(seconds is None or seconds < PUBLISH_RETRY_BOUND_S for seconds, _ in OUTAGES)


@pytest.mark.parametrize(("stopped_s", "done"), OUTAGES, ids=["restart", "stop-10s", "stop-60s"])
def test_a_redis_outage_mid_run_ends_in_success_with_every_candle_and_signal_once(scenario, stopped_s, done):
    run_id, duplicate = scenario.submit()
    assert not duplicate
    scenario.wait_mid_run(run_id, results=3)

    at = scenario.before_fault(run_id)
    started = time.monotonic()
    redis = scenario.container("redis")
    if stopped_s is None:
        docker("restart", redis)
    else:
        docker("stop", redis)
        time.sleep(stopped_s)
        docker("start", redis)
    # Reconnecting is asserted, not timed (the seconds go to the table): a process that never comes back
    # within the run's bound is the failure.
    watch = ReconnectWatch(reconnect_probes(scenario.stack), RUN_BOUND_S).start()
    body = scenario.wait_terminal(run_id, RUN_BOUND_S, started)
    seconds, missing = watch.result()
    back = ", ".join(f"{name} {seconds[name]:.0f} s" for name in sorted(seconds))
    scenario.row.scenario, scenario.row.done = "2 redis outage", f"{done} at {at}; reconnected: {back or 'none'}"
    scenario.problems += [f"{name} did not reconnect within {RUN_BOUND_S:.0f} s of Redis' return" for name in missing]

    scenario.expect_success(body)
    scenario.judge()
