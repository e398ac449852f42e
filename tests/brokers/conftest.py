"""The broker suite's servers: a RabbitMQ node started once for the session (Sentinel groups are per module)."""

from __future__ import annotations

import pytest

from tests.brokers.servers import rabbitmq_server


@pytest.fixture(scope="session")
def rabbitmq():
    with rabbitmq_server() as node:
        yield node
