"""Redis stopped for 10 s and 60 s while a run's stage tasks finish (AOF on, as in production): the workers
reconnect, retries, the next stage and the chord's finish are published once it is back, and the run ends
SUCCESS with every candle once."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import empty_database
from tests.utils.servers import restartable_redis
from tests.utils.stack import LocalStack, http

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "BTC/USDT"]
SIM_NOW = "2024-03-01T00:30:00Z"


@pytest.fixture()
def outage_stack(database_url):
    engine = create_engine(database_url)
    empty_database(engine)
    engine.dispose()
    with restartable_redis() as server, LocalStack(server.url, database_url, SYMBOLS, SIM_NOW,
                                                   extra_env={"PIPELINE_BATCH_SIZE": "1"}) as stack:
        yield server, stack


def _counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT i.symbol, count(*) FROM candles c JOIN instruments i
                                      ON i.id = c.instrument_id GROUP BY i.symbol""")).all()
    engine.dispose()
    return dict(rows)


@pytest.mark.parametrize("outage_s", [10, 60])
def test_a_redis_outage_while_stages_finish_ends_the_run_success(outage_stack, database_url, outage_s):
    server, stack = outage_stack
    # Each exchange request takes 2 s, so the batches' stage tasks are finishing when Redis stops.
    status, _ = http("POST", f"http://127.0.0.1:{stack.sim_port}/_sim/faults", body={"rules": [
        {"kind": "timeout", "seconds": 2, "times": 40}]})
    assert status == 200
    _, body = stack.trigger("all")
    time.sleep(3)
    server.stop()
    time.sleep(outage_s)  # within PUBLISH_RETRY_BOUND_S (85 s): publishes and result writes wait it out
    server.start()
    run = stack.wait_for_run(body["task_id"], timeout=240)
    assert run["status"] == "SUCCESS", run
    assert _counts(database_url) == dict.fromkeys(SYMBOLS, 501)
