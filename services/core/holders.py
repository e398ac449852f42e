"""Which worker process holds a delivered message: recorded as it is received, read by the orphan sweeper."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import redis

from services.core import keys

__all__ = ["Holder", "record_holder", "read_holders", "note_received"]

log = logging.getLogger(__name__)

Holder = tuple[str, int, float]  # (worker hostname, pid of its main process, its start in epoch seconds)


def record_holder(client: redis.Redis, task_id: str, holder: Holder, ttl_s: int) -> None:
    """Note that process `holder` received task `task_id`'s message."""
    client.set(keys.message_holder(task_id), json.dumps(list(holder)), ex=ttl_s)


def read_holders(client: redis.Redis, task_ids: list[str]) -> dict[str, Holder]:
    """task id → its holder, for those with one recorded."""
    values = client.mget([keys.message_holder(task_id) for task_id in task_ids]) if task_ids else []
    found = {}
    for task_id, value in zip(task_ids, values, strict=True):
        if value is not None:
            worker, pid, started = json.loads(value)
            found[task_id] = (worker, int(pid), float(started))
    return found


@lru_cache(maxsize=1)
def _client(redis_url: str) -> redis.Redis:
    # Short timeouts: this runs in the worker's event loop, which must not hang on a Redis outage.
    return redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)


def note_received(redis_url: str, task_id: str, holder: Holder, ttl_s: int) -> None:
    """record_holder from a worker's main process; a failure costs only the early hand-back of this one message."""
    try:
        record_holder(_client(redis_url), task_id, holder, ttl_s)
    except redis.RedisError as exc:
        log.warning("could not record the holder of task %s (%s): if this worker dies, the message waits for "
                    "the visibility timeout", task_id, exc)
