"""Scenario 7: Redis at its maxmemory (noeviction) mid-run: new runs are refused with a 503 that says so,
nothing queued is evicted, and once the ceiling is lifted the refused run goes through."""

from __future__ import annotations

import time

import pytest
import redis

from tests.e2e.stack import http
from tests.faults.scenario import API_TOKEN, RUN_BOUND_S

pytestmark = pytest.mark.e2e

FULL_S = 20  # long enough for every process to hit the ceiling (beat renewals, holders, results)
DELAY_S = 60  # a delayed run waits in Redis (held for its ETA) through the whole full spell


def test_a_full_redis_refuses_new_runs_with_a_503_evicts_nothing_and_recovers(scenario):
    client = redis.Redis(host="127.0.0.1", port=int(scenario.stack.env["REDIS_PORT"]))
    delayed = http("POST", scenario.stack.url("API_PORT", f"/api/manual-update/?task=all&symbol={scenario.symbols[0]}"
                                              f"&timeframe={scenario.timeframe}&countdown={DELAY_S}"), token=API_TOKEN)
    assert delayed.status == 202, delayed.text
    evicted_before = client.info("stats")["evicted_keys"]
    started = time.monotonic()
    # At its ceiling, as a backed-up queue leaves it: every write that needs memory is refused.
    client.config_set("maxmemory", client.info("memory")["used_memory"] - 4096)
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("candleflow:faults:probe", "x")
        refused = http("POST", scenario.stack.url("API_PORT", f"/api/manual-update/?task=all&symbol="
                                                  f"{','.join(scenario.symbols)}&timeframe={scenario.timeframe}"),
                       token=API_TOKEN)
        time.sleep(FULL_S)
    finally:
        client.config_set("maxmemory", 0)
    scenario.row.scenario = "7 redis full"
    scenario.row.done = f"`CONFIG SET maxmemory` below used for {FULL_S} s, then 0; a run delayed {DELAY_S} s waiting"
    if refused.status != 503 or "full (maxmemory reached)" not in refused.text:
        scenario.problems.append(f"a run asked while Redis was full got {refused.status}: {refused.text[:300]}")
    evicted = client.info("stats")["evicted_keys"] - evicted_before
    if evicted:
        scenario.problems.append(f"{evicted} key(s) evicted while Redis was full")

    run_id, duplicate = scenario.submit()  # the refused run, asked again once there is room
    assert not duplicate
    body = scenario.wait_terminal(run_id, RUN_BOUND_S, started)
    scenario.expect_success(body)
    late = scenario.wait_terminal(delayed.body["task_id"], DELAY_S + RUN_BOUND_S, started)
    scenario.expect_success(late)
    scenario.judge()
