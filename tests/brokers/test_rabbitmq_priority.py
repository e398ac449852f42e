"""Run priorities on RabbitMQ: the operator's 0-9 published as RabbitMQ orders them (highest first)."""

from __future__ import annotations

import pytest
from kombu import Connection

from services.core import config
from services.core.priority import broker_priority
from tests.brokers.stack import control_app

pytestmark = pytest.mark.integration


def test_rabbitmq_an_urgent_message_overtakes_the_ones_waiting_before_it(rabbitmq, monkeypatch):
    monkeypatch.setenv("BROKER_URL", rabbitmq.url)  # broker_priority speaks the configured broker's order
    config.get_settings.cache_clear()
    sender = control_app(rabbitmq.url)
    try:
        with Connection(rabbitmq.url) as connection:  # no stack runs in this module: nobody consumes
            queue = next(q for q in sender.conf.task_queues if q.name == "signals")(connection.default_channel)
            queue.declare()
            queue.purge()
        for name, priority in (("can-wait", 0), ("default", 5), ("urgent", 9)):
            sender.send_task("signals.stage.signals", task_id=name, queue="signals",
                             priority=broker_priority(priority))
        with Connection(rabbitmq.url) as connection:
            queue = next(q for q in sender.conf.task_queues if q.name == "signals")(connection.default_channel)
            order = []
            while (message := queue.get(no_ack=True)) is not None:
                order.append(message.headers["id"])
    finally:
        sender.close()
        config.get_settings.cache_clear()
    assert order == ["urgent", "default", "can-wait"]
