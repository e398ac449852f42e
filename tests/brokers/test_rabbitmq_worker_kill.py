"""A worker SIGKILLed mid-task on RabbitMQ: the broker hands its message back the moment its connection
drops (no sweeper, no visibility timeout), and the next worker completes the run."""

from __future__ import annotations

import os
import signal

import pytest
import redis
from kombu import Connection
from sqlalchemy import text

from services.core import keys
from services.core.brokers import queue_depths_amqp
from services.core.store.instruments import seed_instruments
from services.exchange_sim.server import running_simulator
from tests.brokers.stack import control_app
from tests.utils.waiting import wait_until
from tests.utils.workers import running_worker

pytestmark = pytest.mark.integration

RUN_ID = "rabbitmq-killed-worker-run"
STAGE_TASK = f"{RUN_ID}.0.ohlc"


def _run_state(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT state FROM pipeline_runs WHERE id = :id"), {"id": RUN_ID}).scalar()


def _active(worker) -> set[str]:
    return {task["id"] for tasks in (worker.inspect().active() or {}).values() for task in tasks}


def _ready(url: str, queue: str) -> int:
    with Connection(url) as connection:
        return queue_depths_amqp(connection, [queue])[queue][0]


def test_rabbitmq_redelivers_a_sigkilled_workers_task_at_once_and_the_run_completes(rabbitmq, fresh_servers,
                                                                                     engine):
    redis_url, database_url = fresh_servers
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD", "ETH/USD"], ["1h"])
    # The stage's first request stalls 60 s: the worker is killed while it waits.
    stall = [{"kind": "timeout", "seconds": 60, "times": 1}]
    with running_simulator(symbols=["BTC/USD", "ETH/USD"], faults=stall) as (url, _sim):
        env = {"BROKER_URL": rabbitmq.url, "EXCHANGE": "binance", "EXCHANGE_API_URL": url,
               "EXCHANGE_TIMEOUT_MS": "120000", "SYNC_LOOKBACK_BARS": "24", "EXCHANGE_CLOCK_RECHECK_S": "0",
               "EXCHANGE_RATE_LIMIT_PER_S": "1000"}
        sender = control_app(rabbitmq.url)
        with running_worker("ingest", redis_url, database_url, **env) as first:
            sender.send_task("pipeline.start", args=["ohlc", {}], task_id=RUN_ID, queue="pipeline")
            wait_until(lambda: STAGE_TASK in _active(first), "the stage task to be running", 60, detail=first.log)
            assert _ready(rabbitmq.url, "ingest") == 0  # delivered, unacknowledged: not in the queue
            # No holder recorded: nothing needs to find this worker dead on RabbitMQ.
            assert not redis.Redis.from_url(redis_url).exists(keys.message_holder(STAGE_TASK))
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait(30)
        # Back in its queue by the broker alone, ready for any consumer (Redis would hold it unacked for
        # the visibility timeout, hours, or until the orphan sweeper's next minute).
        wait_until(lambda: _ready(rabbitmq.url, "ingest") == 1, "the broker to requeue the stage task", 30)
        with running_worker("ingest", redis_url, database_url, **env) as second:
            wait_until(lambda: _run_state(engine) not in (None, "STARTED"), "the run to end", 120, detail=second.log)
            assert _run_state(engine) == "SUCCESS", second.log()
            assert f"ingest.stage.ohlc[{STAGE_TASK}] received" in second.log()
    sender.close()
    with engine.connect() as conn:
        counts = dict(conn.execute(text("""SELECT i.symbol, count(*) FROM candles c JOIN instruments i
                                            ON i.id = c.instrument_id GROUP BY i.symbol""")).all())
    assert counts == {"BTC/USD": 25, "ETH/USD": 25}  # each bar once: the killed attempt wrote nothing
