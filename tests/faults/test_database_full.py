"""Scenario 8: Postgres out of connections mid-run (every slot taken by the suite, the stack's own connections
cut): the read routes answer 503, the stages that cannot connect are retried, nothing crashes for good, and the
run ends SUCCESS."""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import http
from tests.faults.scenario import RUN_BOUND_S
from tests.utils.connections import fill_connections

pytestmark = pytest.mark.e2e

FULL_S = 20


def _take_every_connection(dsn: str) -> list:
    """Every slot the suite's, and every other client's connection cut (as a restart would), so the stack's
    processes must connect anew and are refused; the slots cut free are taken too."""
    held = fill_connections(dsn)
    with held[0].cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE backend_type = 'client backend' AND pid <> ALL(%s)",
                       ([connection.get_backend_pid() for connection in held],))
    held[0].commit()
    return fill_connections(dsn, held)


def test_postgres_out_of_connections_mid_run_gives_503_on_reads_and_the_run_still_succeeds(scenario):
    run_id, duplicate = scenario.submit()
    assert not duplicate
    scenario.wait_mid_run(run_id, results=3)
    at = scenario.before_fault(run_id)
    started = time.monotonic()
    held = _take_every_connection(f"postgresql://candleflow:candleflow@127.0.0.1:{scenario.stack.env['POSTGRES_PORT']}"
                                  "/candleflow")
    try:
        # A symbol the API has not read yet, so no cached answer stands in for the database.
        read = http("GET", scenario.stack.url("API_PORT", "/api/candles?symbol=ETH/USDT&timeframe=1h&limit=5"))
        time.sleep(FULL_S)
    finally:
        for connection in held:
            connection.close()
    scenario.row.scenario = "8 postgres full"
    scenario.row.done = f"every Postgres connection taken ({len(held)}), the stack's cut, for {FULL_S} s at {at}"
    if read.status != 503:
        scenario.problems.append(f"a read while Postgres was full got {read.status}: {read.text[:300]}")
    body = scenario.wait_terminal(run_id, RUN_BOUND_S, started)
    scenario.expect_success(body)
    after = http("GET", scenario.stack.url("API_PORT", "/api/candles?symbol=ETH/USDT&timeframe=1h&limit=5"))
    if after.status != 200:
        scenario.problems.append(f"reads did not recover: {after.status} {after.text[:300]}")
    scenario.judge()
