"""The pipeline as OS processes (tests/utils/stack.py) with its Celery broker on a server the broker suite started,
while candleflow's own state stays in REDIS_URL."""

from __future__ import annotations

import urllib.request

from celery import Celery

from services.core.celery_app import TASK_ROUTES, task_queues
from tests.utils.stack import LocalStack

__all__ = ["broker_env", "control_app", "BrokerStack", "queue_metric"]

def broker_env(broker_url: str, sentinel_master: str = "") -> dict[str, str]:
    """The settings that move the Celery broker (and, on Sentinel, the results) off REDIS_URL."""
    env = {"BROKER_URL": broker_url}
    if sentinel_master:
        env |= {"RESULT_BACKEND": broker_url, "BROKER_SENTINEL_MASTER": sentinel_master}
    return env


def control_app(broker_url: str, sentinel_master: str = "") -> Celery:
    """A client app on the broker, routed and declared as services.core.celery_app is."""
    options = {"master_name": sentinel_master} if sentinel_master else {}
    app = Celery(broker=broker_url, broker_transport_options=options)
    app.conf.update(task_queues=task_queues(broker_url), task_routes=TASK_ROUTES)
    return app


class BrokerStack(LocalStack):
    """LocalStack with its Celery broker elsewhere; its control app (consumers, send_task) on that broker."""

    def __init__(self, redis_url: str, database_url: str, symbols: list[str], sim_now: str, broker_url: str,
                 sentinel_master: str = "", extra_env: dict | None = None) -> None:
        super().__init__(redis_url, database_url, symbols, sim_now,
                         extra_env={**broker_env(broker_url, sentinel_master), **(extra_env or {})})
        self.control = control_app(broker_url, sentinel_master)


def queue_metric(port: int, name: str, queue: str) -> float | None:
    """One queue's sample of metric `name` as the stack's exporter serves it now; None when left out."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f'{name}{{queue="{queue}"}} '):
                return float(line.split()[-1])
    return None
