"""The brokers and result backends candleflow runs on, and what each needs: URL schemes as data."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from amqp.exceptions import NotFound
from redis.sentinel import Sentinel

__all__ = ["Broker", "BROKERS", "RESULT_BACKEND_SCHEMES", "MAX_PRIORITY", "broker_of", "check_broker_url",
           "check_result_backend", "sentinel_hosts", "broker_transport_options", "backend_transport_options",
           "queue_arguments", "broker_redis", "queue_depths_amqp"]

# RabbitMQ's priority queues take 0..x-max-priority; the operator's scale is 0-9 (services/core/priority.py).
MAX_PRIORITY = 9


@dataclass(frozen=True)
class Broker:
    """One kind of broker, as the rest of the code needs to know it."""

    kind: str  # "redis" (redis:// and rediss://), "sentinel" or "amqp"
    # kombu's Redis transport pops priority 0 first; RabbitMQ delivers the highest number first.
    lowest_priority_first: bool
    # Waiting and delivered messages can be read without taking them (kombu's Redis lists and
    # `unacked` hash): the lost-run check and the orphan sweeper need that, and the exporter's ages.
    readable_messages: bool
    # A consumer's unacknowledged messages go back to their queue the moment its connection drops
    # (AMQP); on Redis they wait for the visibility timeout, or for the orphan sweeper.
    redelivers_on_disconnect: bool


_REDIS = Broker("redis", lowest_priority_first=True, readable_messages=True, redelivers_on_disconnect=False)
# URL scheme → broker. Anything else is refused at start (check_broker_url).
BROKERS = {
    "redis": _REDIS,
    "rediss": _REDIS,
    "sentinel": Broker("sentinel", lowest_priority_first=True, readable_messages=True,
                       redelivers_on_disconnect=False),
    "amqp": Broker("amqp", lowest_priority_first=False, readable_messages=False, redelivers_on_disconnect=True),
}
# Results stay in Redis: chords count their parts there, and run status polls read them by id
# (an AMQP result backend would be consumed by the first reader).
RESULT_BACKEND_SCHEMES = ("redis", "rediss", "sentinel")


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def broker_of(url: str) -> Broker:
    """The broker a BROKER_URL names; ValueError naming the accepted schemes for anything else."""
    broker = BROKERS.get(_scheme(url))
    if broker is None:
        raise ValueError(f"unsupported scheme {_scheme(url) or url[:20]!r}: use one of "
                         + ", ".join(f"{s}://" for s in BROKERS))
    return broker


def _check_sentinel(url: str, sentinel_master: str) -> None:
    if not sentinel_master:
        raise ValueError("a sentinel:// URL needs BROKER_SENTINEL_MASTER (the master's name in sentinel.conf)")
    sentinel_hosts(url)


def check_broker_url(url: str, sentinel_master: str = "") -> str:
    """`url` if candleflow can use it as its broker, else ValueError saying why."""
    if broker_of(url).kind == "sentinel":
        _check_sentinel(url, sentinel_master)
    return url


def check_result_backend(url: str, sentinel_master: str = "") -> str:
    """`url` if candleflow can keep its results there (a Redis, directly or by Sentinel), else ValueError."""
    scheme = _scheme(url)
    if scheme not in RESULT_BACKEND_SCHEMES:
        raise ValueError(f"unsupported scheme {scheme or url[:20]!r}: results need a Redis, use one of "
                         + ", ".join(f"{s}://" for s in RESULT_BACKEND_SCHEMES)
                         + " (chords count their parts in the result backend)")
    if scheme == "sentinel":
        _check_sentinel(url, sentinel_master)
    return url


def sentinel_hosts(url: str) -> list[tuple[str, int]]:
    """(host, port) of every sentinel in `sentinel://h1:26379;sentinel://h2:26379`, as kombu splits it."""
    hosts = []
    for part in url.split(";"):
        parts = urlsplit(part.strip())
        if parts.scheme != "sentinel" or not parts.hostname:
            raise ValueError(f"{part[:40]!r} is not sentinel://host:port (separate sentinels with ';')")
        hosts.append((parts.hostname, parts.port or 26379))
    return hosts


def _sentinel_options(url: str, sentinel_master: str) -> dict:
    return {"master_name": sentinel_master} if _scheme(url) == "sentinel" else {}


def broker_transport_options(url: str, *, sentinel_master: str, visibility_timeout_s: int,
                             priority_steps: list[int]) -> dict:
    """Celery's broker_transport_options for the broker `url` names."""
    if broker_of(url).kind == "amqp":
        return {}  # priorities live in the queue's arguments (queue_arguments), redelivery in the broker
    # Priority steps are global across a worker's queues (kombu pops every queue's most urgent list
    # first); within a level, queues are taken in the order the worker names them.
    return {"visibility_timeout": visibility_timeout_s, "priority_steps": priority_steps,
            "queue_order_strategy": "priority", **_sentinel_options(url, sentinel_master)}


def backend_transport_options(url: str, *, sentinel_master: str, retry_policy: dict) -> dict:
    """Celery's result_backend_transport_options for the result backend `url` names."""
    return {"retry_policy": retry_policy, **_sentinel_options(url, sentinel_master)}


def queue_arguments(url: str) -> dict:
    """The arguments every queue is declared with on this broker: a priority queue on RabbitMQ.

    Classic queues, because quorum queues ignore per-message priority before RabbitMQ 4.0 and
    Debian 12 ships 3.10 (docs/adr/0027-brokers.md)."""
    return {"x-max-priority": MAX_PRIORITY} if broker_of(url).kind == "amqp" else {}


def broker_redis(url: str, sentinel_master: str = "", timeout_s: float = 5.0) -> redis.Redis | None:
    """A client on the Redis that holds the broker's messages (the current master, by Sentinel), or
    None when the broker is not a Redis and its messages cannot be read in place."""
    broker = broker_of(url)
    if broker.kind == "redis":
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    if broker.kind == "sentinel":
        # The database number rides on the first URL, as kombu reads it.
        db = int(urlsplit(url.split(";")[0]).path.strip("/") or 0)
        sentinel = Sentinel(sentinel_hosts(url), socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return sentinel.master_for(sentinel_master, db=db, socket_timeout=timeout_s,
                                   socket_connect_timeout=timeout_s)
    return None


def queue_depths_amqp(connection, queues: list[str]) -> dict[str, tuple[int, int]]:
    """Queue → (ready messages, consumers) on RabbitMQ, by a passive declare of each over a kombu
    `connection`: exact and live (the management API's figures are sampled every few seconds), and
    over the broker's own port. A queue no worker has declared yet holds nothing: (0, 0)."""
    result = {}
    channel = connection.channel()
    try:
        for queue in queues:
            try:
                _name, ready, consumers = channel.queue_declare(queue=queue, passive=True)
            except NotFound:
                channel = connection.channel()  # the broker closes a channel on a failed declare
                ready, consumers = 0, 0
            result[queue] = (ready, consumers)
    finally:
        channel.close()
    return result
