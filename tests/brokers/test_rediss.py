"""The pipeline with its broker and results on a TLS-only Redis (rediss://, server verified against a CA),
candleflow's own state on the plain REDIS_URL."""

from __future__ import annotations

import pytest
import redis

from tests.brokers.servers import tls_redis_server
from tests.brokers.stack import BrokerStack

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD"]
SIM_NOW = "2024-03-01T00:30:00Z"


def test_rediss_carries_a_triggered_run_with_broker_and_results_over_tls(fresh_servers):
    with tls_redis_server() as url, BrokerStack(*fresh_servers, SYMBOLS, SIM_NOW, broker_url=url,
                                                extra_env={"RESULT_BACKEND": url}) as stack:
        _, body = stack.trigger("all")
        run = stack.wait_for_run(body["task_id"])
        assert run["status"] == "SUCCESS", run
        assert redis.Redis.from_url(url).exists(f"celery-task-meta-{body['task_id']}")  # results went over TLS
    plain_state = redis.Redis.from_url(fresh_servers[0])
    assert not plain_state.exists(f"celery-task-meta-{body['task_id']}")  # not into REDIS_URL
