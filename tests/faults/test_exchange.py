"""Scenario 4: the exchange misbehaves during a run (429 bursts, 5xx, a truncated body, a symbol down for longer than
the retries): what the retries cannot absorb is ledgered, and the repair job fills it."""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import http
from tests.faults.scenario import RUN_BOUND_S

pytestmark = pytest.mark.e2e

KLINES = "/api/v3/klines"
# Short bursts the in-fetch retries (FETCH_RETRIES, backoff) absorb, then one symbol failing more often than a
# window is retried (1 + FETCH_RETRIES attempts): its windows go to the ledger as failed.
RULES = [
    {"kind": "http_429", "path": KLINES, "times": 3, "retry_after": 1},
    {"kind": "http_500", "path": KLINES, "symbol": "ETH/USD", "times": 2},
    {"kind": "malformed_json", "path": KLINES, "symbol": "BTC/USDT", "times": 1},
    {"kind": "http_503", "path": KLINES, "symbol": "SOL/USD", "times": 12},
]
REPAIR_BOUND_S = 120.0


def test_exchange_faults_are_retried_or_ledgered_and_repaired_until_every_candle_is_stored(scenario):
    sim = scenario.stack.url("SIM_PORT", "/_sim/faults")
    scenario.row.scenario = "4 exchange faults"
    scenario.row.done = "429x3 (Retry-After 1), 500x2, truncated body x1, 503x12 on one symbol; repair; re-run"
    reply = http("POST", sim, body=RULES)
    assert reply.status == 200, reply.text
    try:
        started = time.monotonic()
        run_id, _ = scenario.submit()
        first = scenario.wait_terminal(run_id, RUN_BOUND_S, started)
        fired = [rule["fired"] for rule in http("GET", sim).body["rules"]]
    finally:
        http("DELETE", sim)
    if first is not None and first["status"] not in ("SUCCESS", "PARTIAL"):
        scenario.problems.append(f"first run ended {first['status']}: {first.get('error')}")
    # Every rule must have bitten, or the scenario tested nothing.
    unfired = [rule for rule, count in zip(RULES, fired, strict=True) if count == 0]
    if unfired:
        scenario.problems.append(f"fault rules that never fired: {unfired}")

    failed = scenario.failed_windows()
    scenario.row.done += f" ({failed} windows ledgered failed)"
    scenario.repair_rerun_and_judge(REPAIR_BOUND_S, failed)
