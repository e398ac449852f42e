"""Scenario 0, the control: the same run with no fault, so every other row has a time to compare with."""

from __future__ import annotations

import time

import pytest

from tests.faults.scenario import RUN_BOUND_S

pytestmark = pytest.mark.e2e


def test_an_undisturbed_run_stores_every_expected_candle_and_signal_once(scenario):
    scenario.row.scenario, scenario.row.done = "0 no fault", "one `all` run, nothing done to it"
    started = time.monotonic()
    run_id, duplicate = scenario.submit()
    assert not duplicate
    body = scenario.wait_terminal(run_id, RUN_BOUND_S, started)

    scenario.expect_success(body)
    scenario.judge()
