"""A dead worker's messages: handed back to their queues within minutes instead of Redis' visibility timeout.

With acks_late, kombu's Redis transport keeps every delivered message in its `unacked` hash until
the task acknowledges it, and hands it out again only after `visibility_timeout` (twice the
longest task limit: hours). A worker killed outright (SIGKILL, OOM, a lost host) acknowledges
nothing, so its batch would wait that long. Each worker therefore records, as it receives a
message, which process holds it: hostname, main pid and start time (a restarted container keeps
its hostname and often its pid, never its start time). Every minute the sweeper asks the workers
for theirs (`inspect stats`: pid, uptime), and a message whose holder is gone or replaced is
handed back to its queue by kombu's own restore, once it has been missed for a grace period (a
worker too busy to answer one broadcast is not taken for dead).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

import redis
from celery import Celery
from kombu.transport.redis import Channel

from services.core import keys
from services.core.holders import Holder, read_holders

__all__ = ["SAME_START_S", "held_messages", "orphaned", "restore_orphans"]

log = logging.getLogger(__name__)

# How far a start time read back from `inspect stats` (whole seconds of uptime, one broadcast's
# latency) may be from the recorded one and still be the same process. A worker takes longer than
# this to start, so a restarted one never passes for the process it replaced.
SAME_START_S = 3.0


def _is_alive(holder: Holder, alive: Mapping[str, tuple[int, float]]) -> bool:
    worker, pid, started = holder
    current = alive.get(worker)
    return current is not None and current[0] == pid and abs(current[1] - started) <= SAME_START_S


def held_messages(client: redis.Redis) -> dict[str, str]:
    """Delivery tag → task id of every message a worker holds unacknowledged."""
    held = {}
    for tag, raw in client.hgetall(Channel.unacked_key).items():
        try:
            task_id = json.loads(raw)[0]["headers"]["id"]
        except (ValueError, IndexError, KeyError, TypeError):
            continue  # not a Celery task message: not ours to judge
        held[tag.decode()] = task_id
    return held


def orphaned(held: Mapping[str, str], holders: Mapping[str, Holder], alive: Mapping[str, tuple[int, float]],
             suspects: Mapping[str, float], now: float, grace_s: float) -> tuple[list[str], dict[str, float]]:
    """(tags to hand back, suspects to keep): a held message whose holder is not alive — no worker of its
    name answered, or one answered with another pid or start (`alive`: worker → (pid, start)) — is a
    suspect from `now`, and handed back once it has been one for `grace_s`. A message with no recorded
    holder is left to the visibility timeout."""
    restore, keep = [], {}
    for tag, task_id in held.items():
        holder = holders.get(task_id)
        if holder is None or _is_alive(holder, alive):
            continue
        first_missed = suspects.get(tag, now)
        if now - first_missed >= grace_s:
            restore.append(tag)
        else:
            keep[tag] = first_missed
    return restore, keep


def restore_orphans(celery: Celery, client: redis.Redis, grace_s: float, inspect_timeout_s: float = 2.0,
                    now: float | None = None, broker: redis.Redis | None = None) -> list[str]:
    """Hand the messages of dead workers back to their queues; the task ids handed back. `client` holds
    the holders (REDIS_URL), `broker` the messages when it is another Redis (Sentinel's master)."""
    now = time.time() if now is None else now
    held = held_messages(broker or client)
    if not held:
        client.delete(keys.ORPHAN_SUSPECTS)
        return []
    holders = read_holders(client, sorted(set(held.values())))
    if not holders:
        return []
    asked = time.time()
    replies = celery.control.inspect(timeout=inspect_timeout_s).stats() or {}
    alive = {worker: (int(stats.get("pid", -1)), asked - float(stats.get("uptime", 0)))
             for worker, stats in replies.items()}
    suspects = {tag.decode(): float(first) for tag, first in client.hgetall(keys.ORPHAN_SUSPECTS).items()}
    restore, keep = orphaned(held, holders, alive, suspects, now, grace_s)
    pipe = client.pipeline()
    pipe.delete(keys.ORPHAN_SUSPECTS)
    if keep:
        pipe.hset(keys.ORPHAN_SUSPECTS, mapping=keep)
    pipe.execute()
    restored = []
    with celery.connection_for_write() as connection:
        qos = connection.default_channel.qos
        for tag in restore:
            # kombu's own restore: one transaction moves the message from the unacked hash to the
            # head of its queue's priority list, marked redelivered (an acknowledged one is gone: no-op).
            qos.restore_by_tag(tag)
            worker, pid, _started = holders[held[tag]]
            log.warning("worker %s (pid %d) is gone: task %s handed back to its queue", worker, pid, held[tag])
            restored.append(held[tag])
    return restored
