"""A worker killed mid-task (SIGKILL of every process, then started again under the same name): the
sweeper hands its message back at once instead of after Redis' visibility timeout, and the run completes."""

from __future__ import annotations

import os
import signal

import pytest
import redis
from sqlalchemy import text

from services.core import keys
from services.core.pipeline.orphans import held_messages, restore_orphans
from services.core.store.instruments import seed_instruments
from services.exchange_sim.server import running_simulator
from tests.utils.waiting import wait_until
from tests.utils.workers import running_worker

pytestmark = pytest.mark.integration

RUN_ID = "dead-worker-run"
STAGE_TASK = f"{RUN_ID}.0.ohlc"


def _run_state(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT state FROM pipeline_runs WHERE id = :id"), {"id": RUN_ID}).scalar()


def test_a_killed_workers_batch_is_handed_back_and_the_run_completes(fresh_servers, engine):
    redis_url, database_url = fresh_servers
    client = redis.Redis.from_url(redis_url)
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD", "ETH/USD"], ["1h"])
    # The first request the stage makes stalls 60 s: the worker is killed while it waits.
    stall = [{"kind": "timeout", "seconds": 60, "times": 1}]
    with running_simulator(symbols=["BTC/USD", "ETH/USD"], faults=stall) as (url, _sim):
        env = {"EXCHANGE": "binance", "EXCHANGE_API_URL": url, "EXCHANGE_TIMEOUT_MS": "120000",
               "SYNC_LOOKBACK_BARS": "24", "EXCHANGE_CLOCK_RECHECK_S": "0", "EXCHANGE_RATE_LIMIT_PER_S": "1000"}
        with running_worker("ingest", redis_url, database_url, **env) as first:
            control = first.control
            control.send_task("pipeline.start", args=["ohlc", {}], task_id=RUN_ID, queue="pipeline")
            wait_until(lambda: STAGE_TASK in held_messages(client).values()
                       and client.exists(keys.message_holder(STAGE_TASK)), "the stage task to be held", 60,
                       detail=first.log)
            # Alive and busy: its message stays where it is.
            assert restore_orphans(control, client, grace_s=0) == []
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait(30)
        assert STAGE_TASK in held_messages(client).values()  # unacknowledged: Redis alone would wait hours
        with running_worker("ingest", redis_url, database_url, **env) as second:  # same name, new process
            assert restore_orphans(second.control, client, grace_s=0) == [STAGE_TASK]
            wait_until(lambda: _run_state(engine) not in (None, "STARTED"), "the run to end", 120, detail=second.log)
            assert _run_state(engine) == "SUCCESS", second.log()
            assert f"ingest.stage.ohlc[{STAGE_TASK}] received" in second.log()  # the new process ran the batch
    with engine.connect() as conn:
        counts = dict(conn.execute(text("""SELECT i.symbol, count(*) FROM candles c JOIN instruments i
                                            ON i.id = c.instrument_id GROUP BY i.symbol""")).all())
    assert counts == {"BTC/USD": 25, "ETH/USD": 25}  # 24 bars of lookback and the open one, each once
