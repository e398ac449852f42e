"""A message a live worker no longer holds, left in kombu's `unacked` hash under its name (what a Redis
outage leaves when the worker drops its reserved and ETA messages and kombu's restore of them fails):
the sweeper hands it back instead of leaving it to Redis' visibility timeout, and the run completes."""

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
from tests.utils.waiting import wait_until
from tests.utils.workers import running_worker

pytestmark = pytest.mark.integration

RUN_ID = "forgotten-start"


def _run_state(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT state FROM pipeline_runs WHERE id = :id"), {"id": RUN_ID}).scalar()


def _strand(client: redis.Redis, parked: str, holder: tuple[str, int, float]) -> None:
    """Move the message parked on a queue nobody serves into the `unacked` hash as kombu files a delivery
    (routed to the pipeline queue when restored), held by `holder`: the state the outage leaves."""
    raw = next(message for key in priority_keys(parked) for message in [client.rpop(key)] if message)
    tag = json.loads(raw)["properties"]["delivery_tag"]
    client.zadd(Channel.unacked_index_key, {tag: time.time()})
    client.hset(Channel.unacked_key, tag, json.dumps([json.loads(raw), "pipeline", "pipeline"]))
    record_holder(client, RUN_ID, holder, 3600)


def test_a_message_its_live_holder_forgot_is_handed_back_and_the_run_completes(fresh_servers, engine):
    redis_url, database_url = fresh_servers
    client = redis.Redis.from_url(redis_url)
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD"], ["1h"])
    with running_simulator(symbols=["BTC/USD"]) as (url, _sim):
        env = {"EXCHANGE": "binance", "EXCHANGE_API_URL": url, "SYNC_LOOKBACK_BARS": "24",
               "EXCHANGE_CLOCK_RECHECK_S": "0", "EXCHANGE_RATE_LIMIT_PER_S": "1000"}
        with running_worker("ingest", redis_url, database_url, **env) as worker:
            stats = worker.control.control.inspect(destination=[worker.hostname], timeout=5).stats()[worker.hostname]
            holder = (worker.hostname, int(stats["pid"]), time.time() - float(stats["uptime"]))
            worker.control.send_task("pipeline.start", args=["ohlc", {}], task_id=RUN_ID, queue="signals")
            _strand(client, "signals", holder)
            assert held_messages(client) and restore_orphans(worker.control, client, grace_s=3600) == []  # a suspect
            assert restore_orphans(worker.control, client, grace_s=0) == [RUN_ID]
            wait_until(lambda: _run_state(engine) not in (None, "STARTED"), "the run to end", 120, detail=worker.log)
            assert _run_state(engine) == "SUCCESS", worker.log()
            assert not held_messages(client)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM candles")).scalar_one() == 25  # 24 bars and the open one
