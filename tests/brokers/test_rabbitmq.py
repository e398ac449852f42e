"""The pipeline with RabbitMQ as its broker: every component its own OS process, results and candleflow's own
state in Redis; priority queues as declared, queue depth in the exporter and `candleflow status`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection

from services.core.brokers import queue_depths_amqp
from tests.brokers.stack import BrokerStack, queue_metric
from tests.utils.rows import STAGE_ROWS, one_row
from tests.utils.waiting import wait_until
from tests.utils.workers import ROOT

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD"]
SIM_NOW = "2024-03-01T00:30:00Z"
CANDLEFLOW = str(Path(sys.executable).parent / "candleflow")


@pytest.fixture(scope="module")
def stack(rabbitmq, fresh_servers):
    with BrokerStack(*fresh_servers, SYMBOLS, SIM_NOW, broker_url=rabbitmq.url) as running:
        yield running


def test_rabbitmq_carries_a_triggered_run_through_every_stage(stack, database_url):
    status, body = stack.trigger("all")
    assert status == 202
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS", run
    assert {(e["instrument"], e["stage"]) for e in run["result"] if e["status"] == "ok"} == {
        (f"{s} 1h", stage) for s in SYMBOLS for stage in ("ohlc", "indicators", "signals")}
    candles, indicators, _signals, _signalled = one_row(database_url, STAGE_ROWS)
    assert candles == indicators == 2 * 501


def test_rabbitmq_queues_are_classic_priority_queues(rabbitmq, stack):
    with Connection(rabbitmq.url) as connection:
        channel = connection.channel()
        # Declaring again with the same arguments is a no-op; with others RabbitMQ refuses (406).
        channel.queue_declare("ingest", durable=True, auto_delete=False, arguments={"x-max-priority": 9})
        with pytest.raises(PreconditionFailed):
            connection.channel().queue_declare("ingest", durable=True, auto_delete=False,
                                              arguments={"x-max-priority": 5})


def test_rabbitmq_queue_depth_reaches_the_exporter_and_candleflow_status(rabbitmq, stack):
    stack.stop("worker-indicators", signal.SIGKILL)
    try:
        _, body = stack.trigger("indicators")
        with Connection(rabbitmq.url) as connection:
            wait_until(lambda: queue_depths_amqp(connection, ["indicators"])["indicators"][0] == 1,
                       "the batch's stage task to wait in the indicators queue", 60)
        wait_until(lambda: queue_metric(stack.exporter_port, "candleflow_queue_depth", "indicators") == 1,
                   "the exporter to report it", 60, detail=lambda: stack.log("exporter"))
        assert queue_metric(stack.exporter_port, "candleflow_queue_in_flight", "indicators") is None  # not known here
        shown = subprocess.run([CANDLEFLOW, "status", "--json"], env=stack.env, cwd=ROOT, capture_output=True,
                               text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        rows = {row["queue"]: row for row in json.loads(shown.stdout)["queues"]}
        assert rows["indicators"]["waiting"] == 1 and rows["indicators"]["consumers"] == 0
        assert rows["ingest"]["consumers"] == 1
    finally:
        stack.start("worker-indicators")
    assert stack.wait_for_run(body["task_id"])["status"] == "SUCCESS"


def test_rabbitmq_candleflow_status_exits_1_naming_the_broker_when_it_is_away(stack):
    env = {**stack.env, "BROKER_URL": "amqp://guest:guest@127.0.0.1:1//"}
    shown = subprocess.run([CANDLEFLOW, "status"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 1 and "broker at 127.0.0.1:1" in shown.stderr, shown.stderr


def test_rabbitmq_quorum_queues_refuse_priorities_in_the_version_debian_ships(rabbitmq):
    # Why candleflow declares classic queues (docs/adr/0027-brokers.md): RabbitMQ 3.x quorum queues take no
    # x-max-priority (4.0 added two-level priorities). When Debian ships 4.x this fails: revisit the ADR.
    with Connection(rabbitmq.url) as connection:
        version = connection.default_channel.connection.server_properties["version"]
        with pytest.raises(PreconditionFailed, match="invalid arg 'x-max-priority'"):
            connection.channel().queue_declare("quorum-probe", durable=True, auto_delete=False,
                                               arguments={"x-queue-type": "quorum", "x-max-priority": 9})
    assert version.startswith("3."), version

