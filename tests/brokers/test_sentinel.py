"""The pipeline with Redis Sentinel as broker and result backend (one master, one replica, and one sentinel or
three with a quorum of two): a run completes, and a run whose master is SIGKILLed mid-run completes after the
failover."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine

from services.core.brokers import broker_redis
from tests.brokers.servers import SENTINEL_MASTER, sentinel_group
from tests.brokers.stack import BrokerStack, queue_metric
from tests.conftest import empty_database
from tests.utils.broker import queued
from tests.utils.waiting import wait_until
from tests.utils.workers import ROOT

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD"]
SIM_NOW = "2024-03-01T00:30:00Z"
CANDLEFLOW = str(Path(sys.executable).parent / "candleflow")


@pytest.fixture(scope="module", params=[1, 3], ids=["one-sentinel", "three-sentinels"])
def group(request):
    # One group per parameter: the failover test, last, leaves it with a dead master.
    with sentinel_group(sentinels=request.param) as running:
        yield running


@pytest.fixture(scope="module")
def stack(group, fresh_servers):
    # Each group starts clean: a run the other group's test left unfinished would hold the `all` lock here,
    # and every trigger below would answer with that run instead of a new one.
    redis_url, database_url = fresh_servers
    redis.Redis.from_url(redis_url).flushdb()
    engine = create_engine(database_url)
    empty_database(engine)
    engine.dispose()
    with BrokerStack(*fresh_servers, SYMBOLS, SIM_NOW, broker_url=group.url,
                     sentinel_master=SENTINEL_MASTER) as running:
        yield running


def _queued_on_master(group, queue: str) -> int | None:
    """Messages waiting in `queue` on the master the sentinels name now; None while they name none."""
    try:
        return queued(broker_redis(group.url, SENTINEL_MASTER), queue)
    except redis.exceptions.ConnectionError:  # MasterNotFoundError among them
        return None


def test_sentinel_carries_a_triggered_run_with_broker_and_results_on_the_master(stack, group):
    _, body = stack.trigger("all")
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS", run
    master = broker_redis(group.url, SENTINEL_MASTER)
    assert master.connection_pool.get_master_address()[1] == group.ports["master"]
    assert master.exists(f"celery-task-meta-{body['task_id']}")  # the result is on the Sentinel's master


def test_sentinel_master_killed_mid_run_and_the_run_completes_after_failover(stack, group):
    # Mid-run: the batch's candles are in, its indicators task waits in the queue for a consumer.
    stack.stop("worker-indicators", signal.SIGKILL)
    _, body = stack.trigger("all")
    broker = broker_redis(group.url, SENTINEL_MASTER)
    wait_until(lambda: queued(broker, "indicators") == 1, "the indicators task to wait in its queue", 120,
               detail=lambda: stack.log("worker-ingest"))
    group.wait_until_caught_up()
    new_master = group.kill_master()
    assert new_master == group.ports["replica"]
    # Right after a promotion a sentinel may answer "no master" for a moment; clients (kombu, redis-py) retry.
    wait_until(lambda: _queued_on_master(group, "indicators") == 1,
               "the waiting task on the promoted replica", 30)
    # The exporter follows the master too: it reads the waiting task from the promoted replica.
    wait_until(lambda: queue_metric(stack.exporter_port, "candleflow_queue_depth", "indicators") == 1,
               "the exporter to read the new master", 60,
               detail=lambda: stack.log("exporter"))
    shown = subprocess.run([CANDLEFLOW, "status", "--json"], env=stack.env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    waiting = {row["queue"]: row["waiting_by_priority"] for row in json.loads(shown.stdout)["queues"]}
    assert waiting["indicators"] == {"5": 1}, "candleflow status reads the new master, per priority"
    stack.start("worker-indicators")
    run = stack.wait_for_run(body["task_id"], timeout=240)
    assert run["status"] == "SUCCESS", run
    # The other workers rode out the failover: they reconnected through the sentinel to the new master.
    assert "Connection to broker lost" in stack.log("worker-ingest") + stack.log("worker-signals")
