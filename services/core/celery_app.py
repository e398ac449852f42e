"""The Celery application: broker, queues, routing table and delivery guarantees."""

from __future__ import annotations

import logging
import os
import time

from celery import Celery, Task
from celery.signals import before_task_publish, celeryd_init, setup_logging, task_received, worker_process_init
from kombu import Exchange, Queue

from services.core.brokers import (
    Broker,
    backend_transport_options,
    broker_of,
    broker_transport_options,
    queue_arguments,
)
from services.core.config import Settings, get_settings
from services.core.logging import configure_logging
from services.core.priority import DEFAULT_PRIORITY, PRIORITY_STEPS, broker_priority

__all__ = ["app", "WORKER_QUEUES", "PIPELINE_QUEUE", "QUEUES", "TASK_ROUTES", "create_celery", "soft_time_limit",
           "worker_conf", "visibility_timeout_s", "PUBLISH_RETRY_POLICY", "PUBLISH_RETRY_BOUND_S",
           "configured_broker", "task_queues"]

log = logging.getLogger(__name__)

# The stage workers' queues, one worker package each.
WORKER_QUEUES = ("ingest", "indicators", "signals")
# Orchestration (start, finish, abort, prune) has a queue of its own that every worker also
# consumes, so a run's finish never waits behind a backfill in the ingest queue.
PIPELINE_QUEUE = "pipeline"
QUEUES = (*WORKER_QUEUES, PIPELINE_QUEUE)

# One routing table: a task's name prefix decides its queue, so the API can
# send tasks by name without importing worker code.
TASK_ROUTES = {
    "ingest.*": {"queue": "ingest"},
    "indicators.*": {"queue": "indicators"},
    "signals.*": {"queue": "signals"},
    "pipeline.*": {"queue": PIPELINE_QUEUE},
}

# Every worker registers the orchestration tasks; its own tasks come from
# `--include services.<queue>.tasks` on its command line, so a worker loads only
# core and its own package.
TASK_MODULES = ("services.core.pipeline.tasks",)


def soft_time_limit(hard_s: int) -> int:
    """The soft limit for a hard one: 30 s before it, for the task to record its failure."""
    return max(1, hard_s - 30)


def worker_conf(settings: Settings) -> dict:
    """The WORKER_* settings as Celery's worker_* keys (0 means no limit, which Celery calls None)."""
    return {
        "worker_pool": settings.worker_pool,
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        "worker_max_tasks_per_child": settings.worker_max_tasks_per_child or None,
        "worker_max_memory_per_child": settings.worker_max_memory_per_child_kb or None,
    }


# How long a publish (a chain's next stage, a retry, a chord's finish) keeps trying while Redis is
# away: 0 + 1 + 2 + 3 + 4 + 5 × 15 s ≈ 85 s. Celery's default gives up after about a second, and a
# retry whose publish fails drops its message (Reject, requeue=False): a Redis restart mid-run
# ended runs FAILURE. Outages longer than this fail the stage with the connection error named.
PUBLISH_RETRY_POLICY = {"max_retries": 20, "interval_start": 0, "interval_step": 1, "interval_max": 5}
PUBLISH_RETRY_BOUND_S = sum(
    min(PUBLISH_RETRY_POLICY["interval_start"] + PUBLISH_RETRY_POLICY["interval_step"] * n,
        PUBLISH_RETRY_POLICY["interval_max"]) for n in range(PUBLISH_RETRY_POLICY["max_retries"]))


def wait_for_broker(celery: Celery) -> None:
    """Block until the broker answers, for up to PUBLISH_RETRY_BOUND_S; OperationalError after that."""
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=PUBLISH_RETRY_POLICY["max_retries"],
                                     interval_start=PUBLISH_RETRY_POLICY["interval_start"],
                                     interval_step=PUBLISH_RETRY_POLICY["interval_step"],
                                     interval_max=PUBLISH_RETRY_POLICY["interval_max"])


class PatientTask(Task):
    """Every candleflow task: a retry waits for the broker first.

    Celery publishes a retry once and, if Redis is away, rejects the running message without
    requeueing it: the batch's chain stops there and the run fails. Waiting here (a stage's retry
    usually comes from the very outage: the rate limiter lives in Redis) lets the retry publish
    once Redis is back, within PUBLISH_RETRY_BOUND_S.
    """

    def retry(self, *args, **kwargs):
        wait_for_broker(self.app)
        return super().retry(*args, **kwargs)


def visibility_timeout_s(settings: Settings) -> int:
    """Longer than the longest task (the longest limit of any run kind), or Redis redelivers a still-running task."""
    return 2 * max(settings.task_time_limit_s, *settings.task_time_limits.values())


def configured_broker(settings: Settings | None = None) -> Broker:
    """The kind of broker BROKER_URL names, with what it can and cannot do (services/core/brokers.py)."""
    return broker_of((settings or get_settings()).broker_url)


def task_queues(broker_url: str) -> list[Queue]:
    """Each queue on its own exchange (publishing through one never copies into the others), declared
    with the broker's arguments: a priority queue on RabbitMQ."""
    return [Queue(name, Exchange(name), routing_key=name, queue_arguments=queue_arguments(broker_url) or None)
            for name in QUEUES]


def create_celery() -> Celery:
    """Build the app from settings; called once at import for the module-level `app`."""
    settings = get_settings()
    celery = Celery("candleflow", broker=settings.broker_url, backend=settings.result_backend, task_cls=PatientTask)
    celery.conf.update(
        task_queues=task_queues(settings.broker_url),
        task_default_queue="ingest",
        task_routes=TASK_ROUTES,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # Redelivery instead of loss: a task is acknowledged only after it ran,
        # and a worker killed mid-task hands the message back to the queue.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        **worker_conf(settings),
        # Stage tasks are sent with their run kind's limits (TASK_TIME_LIMITS); these cover the rest.
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=soft_time_limit(settings.task_time_limit_s),
        result_expires=settings.result_expires_s,
        result_extended=True,
        task_track_started=True,
        task_send_sent_event=True,
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
        # A broker that refuses a command (Redis at its maxmemory answers OOM to the worker's own
        # pidbox and queue declarations) restarts the consumer with back-off, as a lost connection
        # does, instead of ending the worker with "Unrecoverable error" (docs/reliability.md, scenario 7).
        broker_channel_error_retry=True,
        # Ride out a Redis outage of up to PUBLISH_RETRY_BOUND_S: publishes and result writes (a
        # chord's part counter included) wait for it to come back instead of failing the run.
        task_publish_retry=True,
        task_publish_retry_policy=PUBLISH_RETRY_POLICY,
        result_backend_always_retry=True,
        # Celery sleeps a random time up to the cap between result-write retries (full jitter, 2.5 s
        # on average at the 5 s cap): 60 of them outlast PUBLISH_RETRY_BOUND_S by far, so the publish
        # bound is the one that holds.
        result_backend_max_retries=60,
        result_backend_base_sleep_between_retries_ms=500,
        result_backend_max_sleep_between_retries_ms=PUBLISH_RETRY_POLICY["interval_max"] * 1000,
        result_backend_transport_options=backend_transport_options(
            settings.result_backend, sentinel_master=settings.broker_sentinel_master,
            retry_policy=PUBLISH_RETRY_POLICY),
        # On Redis, a dead worker's messages do not wait out the visibility timeout either:
        # services/core/pipeline/orphans.py hands them back.
        broker_transport_options=broker_transport_options(
            settings.broker_url, sentinel_master=settings.broker_sentinel_master,
            visibility_timeout_s=visibility_timeout_s(settings), priority_steps=PRIORITY_STEPS),
        # A message sent without a priority (maintenance, Flower) waits like a default run.
        task_default_priority=broker_priority(DEFAULT_PRIORITY),
        timezone=settings.timezone,
        enable_utc=True,
        imports=TASK_MODULES,
    )
    return celery


app = create_celery()


@setup_logging.connect
def _configure_worker_logging(**_: object) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


@worker_process_init.connect
def _fresh_connections_after_fork(**_: object) -> None:
    from services.core.db import forget_engines_after_fork

    forget_engines_after_fork()


@before_task_publish.connect
def _stamp_enqueue_time(headers: dict | None = None, **_: object) -> None:
    # Celery messages carry no enqueue time; the exporter reads this to age the oldest waiting task.
    if headers is not None:
        headers.setdefault("sent_at", time.time())


@task_received.connect
def _note_the_holder(sender: object = None, request: object = None, **_: object) -> None:
    # Which process holds this message, so the orphan sweeper can hand it back at once if the
    # process dies (services/core/pipeline/orphans.py); in the worker's main process, as it arrives.
    controller = getattr(sender, "controller", None)
    settings = get_settings()
    # RabbitMQ hands a dead consumer's messages back by itself: nobody reads the holders there.
    if request is None or controller is None or configured_broker(settings).redelivers_on_disconnect:
        return
    from services.core.holders import note_received

    note_received(settings.redis_url, request.id, (request.hostname, os.getpid(), controller.startup_time.timestamp()),
                  visibility_timeout_s(settings))


@celeryd_init.connect
def _register_pool_memory_command(**_: object) -> None:
    # Each pool process's memory, asked for over the broker by the exporter (which cannot see this
    # container's /proc); imported here so that only workers carry the command.
    from services.core import pool_memory  # noqa: F401


@celeryd_init.connect
def _serve_worker_metrics(**_: object) -> None:
    # The worker's own process metrics (memory, CPU, fds) for Prometheus, when a port is given.
    port = os.environ.get("WORKER_METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        start_http_server(int(port))
