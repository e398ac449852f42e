"""Lost runs: unfinished runs none of whose messages the broker holds any more, found within minutes,
resumed from their records when they started (resume.py), failed otherwise.

A run is alive while some message of it exists: its start waiting (or held for its ETA), a
stage task queued, being worked on or held for a retry, its finish. Celery stamps every
message of a run with the run's id as `root_id`, and kombu's Redis transport keeps waiting
messages in one list per queue and priority, and delivered ones (acks_late: until the task
ran; ETA ones until then) in the `unacked` hash. So a run quiet for a while whose id is on no
message in those places will never progress: its messages were purged or Redis was flushed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from kombu.transport.redis import Channel
from sqlalchemy import Engine

from services.core import keys
from services.core.celery_app import QUEUES
from services.core.pipeline import records
from services.core.pipeline.resume import resume_run
from services.core.pipeline.runs import queued_run, release_run
from services.core.priority import PRIORITY_STEPS, priority_keys

__all__ = ["Suspect", "lost_runs", "message_keys", "run_ids_in_broker", "recover_lost_runs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suspect:
    """An unfinished run: when it last showed progress, when it is due to start if delayed, and whether
    it can be resumed (STARTED with planned batches or recorded refusals: its records say what is left to
    do; with every instrument refused, only the finish)."""

    run_id: str
    kind: str
    scope: dict
    quiet_since: datetime
    starts_at: datetime | None = None
    resumable: bool = False


def lost_runs(suspects: Iterable[Suspect], alive: set[str], now: datetime, quiet_s: float) -> list[Suspect]:
    """The suspects that are lost: quiet for `quiet_s`, past their start time, and with no message in `alive`."""
    grace = timedelta(seconds=quiet_s)
    return [s for s in suspects
            if s.run_id not in alive and s.quiet_since + grace <= now
            and (s.starts_at is None or s.starts_at + grace <= now)]


def message_keys(queues: Iterable[str] = QUEUES, steps: Iterable[int] = PRIORITY_STEPS) -> list[str]:
    """Every Redis list kombu keeps waiting messages in: one per queue and priority step."""
    return [key for queue in queues for key in priority_keys(queue, steps)]


def _run_ids(message: object) -> set[str]:
    headers = message.get("headers") if isinstance(message, dict) else None
    if not isinstance(headers, dict):
        return set()
    return {value for value in (headers.get("root_id"), headers.get("id")) if isinstance(value, str)}


def run_ids_in_broker(client: redis.Redis, lists: list[str] | None = None) -> set[str]:
    """The root and task ids of every message waiting or delivered, read in one MULTI (so a message
    moving from the unacked hash back to its list is seen in one of the two)."""
    lists = message_keys() if lists is None else lists
    pipe = client.pipeline(transaction=True)
    for key in lists:
        pipe.lrange(key, 0, -1)
    pipe.hvals(Channel.unacked_key)
    *waiting, delivered = pipe.execute()
    alive: set[str] = set()
    for raw in (payload for payloads in waiting for payload in payloads):
        try:
            alive |= _run_ids(json.loads(raw))
        except ValueError:
            continue
    for raw in delivered:  # [message, exchange, routing key]
        try:
            alive |= _run_ids(json.loads(raw)[0])
        except (ValueError, IndexError, KeyError, TypeError):
            continue
    return alive


def _queued_suspects(client: redis.Redis, known: set[str], now: datetime) -> list[Suspect]:
    """Runs queued by the API (a lock and a Redis record, no row yet), aged by their lock's lifetime."""
    suspects = []
    for key in client.scan_iter(match=keys.RUN_LOCK_PATTERN, count=500):
        holder, ttl = client.get(key), client.ttl(key)
        run_id = holder.decode() if holder else None
        if run_id is None or run_id in known or ttl < 0:
            continue
        record = queued_run(client, run_id)
        if record is not None:
            age = timedelta(seconds=keys.RUN_LOCK_TTL_S - ttl)
            suspects.append(Suspect(run_id, record["kind"], record["scope"], now - age))
    return suspects


def recover_lost_runs(engine: Engine, client: redis.Redis, quiet_s: float, now: datetime | None = None,
                      broker: redis.Redis | None = None) -> tuple[list[str], list[str]]:
    """Resume every lost run that started (lock kept), fail the others with "messages lost" and free their
    lock: (ids failed, ids resumed). A resumed run past RUN_RESUME_LIMIT is failed. The broker (`broker`,
    when its Redis is not `client`'s) is read only when some run has been quiet for `quiet_s`, so a healthy
    minute costs one query and one SCAN. A RabbitMQ broker cannot be read so: pipeline.find_lost skips."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        rows = records.unfinished_runs(conn)
    suspects = [Suspect(row["id"], row["kind"], row["scope"], row["quiet_since"], row["scheduled_for"],
                        resumable=row["state"] == "STARTED" and bool(row["batches"] or row["recorded"]))
                for row in rows]
    suspects += _queued_suspects(client, {row["id"] for row in rows}, now)
    if not lost_runs(suspects, set(), now, quiet_s):
        return [], []
    # Two reads: a message popped by a worker in the instant before kombu files it as unacked is in
    # neither place for that instant, but in the hash by the second read.
    broker = broker or client
    lost = lost_runs(suspects, run_ids_in_broker(broker) | run_ids_in_broker(broker), now, quiet_s)
    why = (f"none of the run's messages was in the broker after {quiet_s:g} s without progress "
           "(purged queue, flushed Redis, or a message lost in delivery)")
    failed, resumed = [], []
    for suspect in lost:
        if suspect.resumable:
            outcome = resume_run(engine, client, suspect.run_id, why)  # "left": it finished meanwhile
            {"resumed": resumed, "failed": failed}.get(outcome, []).append(suspect.run_id)
            continue
        error = {"instrument": "*", "stage": "pipeline", "error": f"messages lost: {why}"}
        with engine.begin() as conn:
            failed_now = records.fail_lost_run(conn, suspect.run_id, suspect.kind, suspect.scope, error)
        # Freed either way: a run that finished meanwhile has no use for it (a stale lock, if its finish missed it).
        release_run(client, suspect.kind, suspect.scope, suspect.run_id)
        if failed_now:
            failed.append(suspect.run_id)
    return failed, resumed
