"""A worker whose broker is full (Redis at its maxmemory, noeviction) waits for room instead of exiting:
Redis answers OOM to the worker's own writes (a control reply, its pidbox declaration), and Celery ends a
worker on such an error unless channel errors are retried (services/core/celery_app.py)."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from celery import Celery
from kombu import Producer

from tests.utils.waiting import wait_until
from tests.utils.workers import running_worker

pytestmark = pytest.mark.integration


def _bind_a_reply_queue(worker) -> None:
    """The control app's reply queue, bound as a control call binds it while it waits for replies."""
    with worker.control.connection_for_write() as connection:
        worker.control.control.mailbox.reply_queue(connection.default_channel).declare()


def _ask_for_a_reply(worker) -> None:
    """A ping that wants a reply on that queue, published as Celery's control does but without declaring
    the queue again (a declaration is refused by a full Redis, the PUBLISH is not): the worker's reply,
    an RPUSH, is then refused, as the orphan sweeper's `inspect` replies are when Redis fills up."""
    mailbox = worker.control.control.mailbox
    with worker.control.connection_for_write() as connection:
        Producer(connection.default_channel, auto_declare=False).publish(
            {"method": "ping", "arguments": {}, "destination": [worker.hostname], "pattern": None,
             "matcher": None, "ticket": str(uuid.uuid4()),
             "reply_to": {"exchange": mailbox.reply_exchange.name, "routing_key": mailbox.oid}},
            exchange=mailbox.exchange.name, declare=[mailbox.exchange], serializer="json",
            headers={"clock": 1, "expires": time.time() + 10})


def test_a_worker_outlives_a_full_redis_and_answers_once_there_is_room(fresh_servers):
    redis_url, database_url = fresh_servers
    client = redis.Redis.from_url(redis_url)
    with running_worker("signals", redis_url, database_url) as worker:
        _bind_a_reply_queue(worker)
        # A ceiling of one byte: refused for as long as it lasts, however the used memory moves (just
        # under the used memory, freed client buffers let a command through now and then). Inside a
        # MULTI Redis then refuses every command, reads included, as it does kombu's declarations.
        client.config_set("maxmemory", 1)
        try:
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                client.set("probe", "x")
            _ask_for_a_reply(worker)
            # Either outcome shows in the log: Celery's "Unrecoverable error" exit, or the consumer's restart.
            wait_until(lambda: worker.process.poll() is not None or "re-establish" in worker.log(),
                       "the worker to exit or restart its consumer", 30, detail=worker.log)
            assert worker.process.poll() is None, f"the worker exited on a full Redis:\n{worker.log()}"
        finally:
            client.config_set("maxmemory", 0)
        # Asked by a client of its own, as the healthcheck asks (the one above declared by hand).
        asker = Celery(broker=redis_url)
        try:
            wait_until(lambda: asker.control.ping(destination=[worker.hostname], timeout=1),
                       "the worker to answer again", 60, detail=worker.log)
        finally:
            asker.close()
        assert worker.process.poll() is None
