"""The instrument universe on the demo stack, through published ports only: the exchange lists a new market,
the market sync records it, an operator adds it over the API, and the next run fetches its candles."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import API_TOKEN
from tests.e2e.stack import http
from tests.e2e.test_stack import run_all
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_an_instrument_added_through_the_api_has_candles_after_the_next_run(stack):
    def api(path: str) -> str:
        return stack.url("API_PORT", path)

    refused = http("POST", api("/api/manual-update/?task=ohlc&symbol=SOL/USD"), token=API_TOKEN)
    assert refused.status == 400 and "not in the universe" in refused.body["message"], refused.text

    # The exchange lists SOL/USD from now on; the market sync (run now, not at 03:00) records it.
    listed = http("POST", stack.url("SIM_PORT", "/_sim/markets"), body={"symbols": ["SOL/USD"]})
    assert listed.status == 200, listed.text
    started = http("POST", api("/api/schedules/markets-sync-daily/run"), token=API_TOKEN)
    assert started.status == 202, started.text
    wait_until(lambda: http("GET", api("/api/markets?quote=USD&listed=true")).body.get("count") == 3,
               "SOL/USD in the market list", 120, interval=1)

    added = http("POST", api("/api/instruments"), token=API_TOKEN, body={"symbol": "SOL/USD"})
    assert added.status == 201, added.text
    assert (added.body["source"], added.body["active"], added.body["timeframes"]) == ("api", True, ["1h"])
    try:
        run = run_all(stack)
        assert run["status"] == "SUCCESS", run
        assert {("SOL/USD 1h", "ohlc"), ("SOL/USD 1h", "signals")} <= {
            (entry["instrument"], entry["stage"]) for entry in run["result"] if entry["status"] == "ok"}
        candles = http("GET", api("/api/candles?symbol=SOL/USD&limit=5"))
        assert candles.status == 200 and candles.body["count"] == 5, candles.text
    finally:  # the other tests count on the seeded universe
        retired = http("PATCH", api("/api/instruments/binance/SOL/USD"), token=API_TOKEN, body={"active": False})
        assert retired.status == 200 and retired.body["retired_at"], retired.text
    assert all(entry["instrument"] != "SOL/USD 1h" for entry in run_all(stack)["result"])
