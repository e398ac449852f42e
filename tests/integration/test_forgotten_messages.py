"""A message no live worker holds, left in kombu's `unacked` hash under a live worker's name (what a Redis
outage leaves when the worker drops its reserved and ETA messages and kombu's restore of them fails) or
under no name (a worker killed before it recorded the holder): the sweeper hands it back instead of
leaving it to Redis' visibility timeout, and the run completes."""

from __future__ import annotations

import json
import time

import pytest
import redis
from kombu.transport.redis import Channel
from sqlalchemy import text

from services.core.holders import record_holder
from services.core.pipeline.orphans import held_messages, restore_orphans
from services.core.priority import priority_keys
from services.core.store.instruments import seed_instruments
from services.exchange_sim.server import running_simulator
from tests.conftest import empty_database
from tests.utils.waiting import wait_until
from tests.utils.workers import running_worker

pytestmark = pytest.mark.integration



def _run_state(engine, run_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT state FROM pipeline_runs WHERE id = :id"), {"id": run_id}).scalar()


def _strand(client: redis.Redis, parked: str, run_id: str, holder: tuple[str, int, float] | None) -> None:
    """Move the message parked on a queue nobody serves into the `unacked` hash as kombu files a delivery
    (routed to the pipeline queue when restored), held by `holder`: the state the outage leaves. With no
    holder: the state a worker killed between kombu's filing and its received handler leaves."""
    raw = next(message for key in priority_keys(parked) for message in [client.rpop(key)] if message)
    tag = json.loads(raw)["properties"]["delivery_tag"]
    client.zadd(Channel.unacked_index_key, {tag: time.time()})
    client.hset(Channel.unacked_key, tag, json.dumps([json.loads(raw), "pipeline", "pipeline"]))
    if holder is not None:
        record_holder(client, run_id, holder, 3600)


@pytest.mark.parametrize("recorded", [True, False], ids=["its-holder-forgot-it", "no-holder-recorded"])
def test_a_message_no_live_worker_holds_is_handed_back_and_the_run_completes(fresh_servers, engine, recorded):
    redis_url, database_url = fresh_servers
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # each case from empty servers: the module's fixture empties them once
    empty_database(engine)
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD"], ["1h"])
    with running_simulator(symbols=["BTC/USD"]) as (url, _sim):
        env = {"EXCHANGE": "binance", "EXCHANGE_API_URL": url, "SYNC_LOOKBACK_BARS": "24",
               "EXCHANGE_CLOCK_RECHECK_S": "0", "EXCHANGE_RATE_LIMIT_PER_S": "1000"}
        with running_worker("ingest", redis_url, database_url, **env) as worker:
            stats = worker.control.control.inspect(destination=[worker.hostname], timeout=5).stats()[worker.hostname]
            holder = (worker.hostname, int(stats["pid"]), time.time() - float(stats["uptime"]))
            run_id = f"forgotten-start-{'recorded' if recorded else 'unrecorded'}"
            worker.control.send_task("pipeline.start", args=["ohlc", {}], task_id=run_id, queue="signals")
            _strand(client, "signals", run_id, holder if recorded else None)
            assert held_messages(client) and restore_orphans(worker.control, client, grace_s=3600) == []  # a suspect
            assert restore_orphans(worker.control, client, grace_s=0) == [run_id]
            wait_until(lambda: _run_state(engine, run_id) not in (None, "STARTED"), "the run to end", 120,
                       detail=worker.log)
            assert _run_state(engine, run_id) == "SUCCESS", worker.log()
            assert not held_messages(client)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM candles")).scalar_one() == 25  # 24 bars and the open one
