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

A live worker can also forget a message it holds: when its broker connection drops, Celery drops
the messages it had reserved or held for an ETA (a retry's countdown, a delayed run) and kombu
tries to put them back at once, while Redis is still away, so the attempt fails and they stay in
the hash under a holder that is alive. So a message whose holder answers but lists it neither as
active, reserved nor scheduled is handed back the same way, after the same grace.

A worker killed between kombu filing a delivery in the hash and its `task_received` handler
recording the holder leaves a message with no holder at all (fault scenario 1 caught one: the
run waited for the visibility timeout). Such a message is handed back, after the same grace,
when every worker that answered listed what it holds and none lists it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping

import redis
from celery import Celery
from kombu.transport.redis import Channel

from services.core import keys
from services.core.holders import Holder, read_holders

__all__ = ["SAME_START_S", "held_messages", "holdings", "orphaned", "restore_orphans"]

log = logging.getLogger(__name__)

# How far a start time read back from `inspect stats` (whole seconds of uptime, one broadcast's
# latency) may be from the recorded one and still be the same process. A worker takes longer than
# this to start, so a restarted one never passes for the process it replaced.
SAME_START_S = 3.0


def _is_alive(holder: Holder, alive: Mapping[str, tuple[int, float]]) -> bool:
    worker, pid, started = holder
    current = alive.get(worker)
    return current is not None and current[0] == pid and abs(current[1] - started) <= SAME_START_S


def _still_held(task_id: str, holder: Holder | None, alive: Mapping[str, tuple[int, float]],
                holding: Mapping[str, set[str]] | None) -> bool:
    """Its holder is alive and has not forgotten it (a worker that did not list its tasks is not judged);
    with no holder recorded: some worker lists it, or not every worker that answered listed its tasks."""
    if holder is None:
        if holding is None or not set(alive) <= set(holding):
            return True
        return any(task_id in listed for listed in holding.values())
    worker = holder[0]
    return _is_alive(holder, alive) and (holding is None or worker not in holding or task_id in holding[worker])


def _why(holder: Holder | None, alive: Mapping[str, tuple[int, float]]) -> str:
    if holder is None:
        return "no holder was recorded and no worker lists it"
    worker, pid, _started = holder
    return f"worker {worker} (pid {pid}) {'forgot it' if _is_alive(holder, alive) else 'is gone'}"


def holdings(replies: Iterable[Mapping[str, list] | None]) -> dict[str, set[str]]:
    """worker → the task ids it holds, from its `inspect active`, `reserved` and `scheduled` replies;
    only workers that answered all three (a missing answer is no evidence of a forgotten message)."""
    replies = [reply or {} for reply in replies]
    answered = set.intersection(*(set(reply) for reply in replies)) if replies else set()
    held: dict[str, set[str]] = {worker: set() for worker in answered}
    for reply in replies:
        for worker in answered:
            for entry in reply[worker]:
                request = entry.get("request", entry)  # `scheduled` wraps the request with its eta
                if isinstance(request, Mapping) and isinstance(request.get("id"), str):
                    held[worker].add(request["id"])
    return held


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
             suspects: Mapping[str, float], now: float, grace_s: float,
             holding: Mapping[str, set[str]] | None = None) -> tuple[list[str], dict[str, float]]:
    """(tags to hand back, suspects to keep): a held message whose holder is not alive — no worker of its
    name answered, or one answered with another pid or start (`alive`: worker → (pid, start)) — or whose
    live holder does not list it (`holding`: worker → task ids, see `holdings`) is a suspect from `now`,
    and handed back once it has been one for `grace_s`. A message with no recorded holder is a suspect
    only when every worker in `alive` is in `holding` and none lists it; else it is left to the
    visibility timeout."""
    restore, keep = [], {}
    for tag, task_id in held.items():
        if _still_held(task_id, holders.get(task_id), alive, holding):
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
    asked = time.time()
    inspect = celery.control.inspect(timeout=inspect_timeout_s)
    replies = inspect.stats() or {}
    alive = {worker: (int(stats.get("pid", -1)), asked - float(stats.get("uptime", 0)))
             for worker, stats in replies.items()}
    # Asked after the message list was read: a message received since is not in `held`, and one that
    # finished since is acknowledged, so handing it back is a no-op.
    holding = holdings([inspect.active(), inspect.reserved(), inspect.scheduled()])
    suspects = {tag.decode(): float(first) for tag, first in client.hgetall(keys.ORPHAN_SUSPECTS).items()}
    restore, keep = orphaned(held, holders, alive, suspects, now, grace_s, holding)
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
            log.warning("%s: task %s handed back to its queue", _why(holders.get(held[tag]), alive), held[tag])
            restored.append(held[tag])
    return restored
