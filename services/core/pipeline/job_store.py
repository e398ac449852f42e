"""The live schedule in RedBeat's Redis keys: jobs written, read and removed in the form beat reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import redis
from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder, to_timestamp

from services.core import keys
from services.core.pipeline.job_plan import LiveEntry
from services.core.pipeline.jobs import (
    InvalidJob,
    Job,
    ScheduleJSONEncoder,
    celery_task,
    is_job_name,
    job_schedule,
    next_due,
    parse_job,
    send_arguments,
)

__all__ = ["StoredJob", "definition", "read_job", "read_jobs", "write_job", "delete_job", "record_run",
           "live_entries", "forget_statics"]

# RedBeat skips entries scored below zero on every tick: where a disabled job waits, costing nothing.
_PARKED = -1


@dataclass(frozen=True)
class StoredJob:
    """A job as Redis holds it: the job, its source, its clock's anchor and the last run it started."""

    job: Job
    source: str
    anchor: datetime | None
    last_run_at: datetime | None
    last_run_id: str | None

    def view(self, now: datetime) -> dict:
        """The job as the API and CLI show it: its JSON plus what reads add."""
        due = next_due(self.job, self.anchor or now, now)
        return {**self.job.spec(), "next_run_at": _iso(due), "last_run_at": _iso(self.last_run_at),
                "last_run_id": self.last_run_id, "source": self.source}


def definition(job: Job, source: str) -> dict:
    """RedBeat's entry definition for the job, with the job itself and its zone beside it for our entry class."""
    args, kwargs, options = send_arguments(job)
    return {"name": job.name, "task": celery_task(job), "args": args, "kwargs": kwargs, "options": options,
            "schedule": job_schedule(job), "enabled": job.enabled, "timezone": job.timezone,
            "job": job.spec(), "source": source}


def write_job(client: redis.Redis, job: Job, source: str, now: datetime, restart_clock: bool,
              create: bool = False) -> bool:
    """Store the job for beat; `restart_clock` counts its next run from now. With `create`, only if no job
    of that name exists (returns False then)."""
    key = keys.redbeat_entry(job.name)
    encoded = json.dumps(definition(job, source), cls=ScheduleJSONEncoder)  # a trading schedule too
    if create:
        if not client.hsetnx(key, "definition", encoded):
            return False
    else:
        client.hset(key, "definition", encoded)
    kept = None if restart_clock else _meta_anchor(client.hget(key, "meta"))
    if kept is None:
        # RedBeat's anchor: an entry with none would be due at once, so a fresh clock starts now.
        client.hset(key, "meta", json.dumps({"last_run_at": now}, cls=RedBeatJSONEncoder))
    due = next_due(job, kept or now, now)
    client.zadd(keys.REDBEAT_SCHEDULE, {key: _PARKED if due is None else to_timestamp(due)})
    return True


def delete_job(client: redis.Redis, name: str) -> None:
    key = keys.redbeat_entry(name)
    with client.pipeline() as pipe:
        pipe.zrem(keys.REDBEAT_SCHEDULE, key)
        pipe.delete(key)
        pipe.execute()


def record_run(client: redis.Redis, name: str, run_id: str, at: datetime) -> None:
    """Remember the last run (or maintenance task) the job started; a job deleted meanwhile stays deleted."""
    key = keys.redbeat_entry(name)
    if client.exists(key):
        client.hset(key, "last_run", json.dumps({"id": run_id, "at": at.isoformat()}))


def read_job(client: redis.Redis, name: str) -> StoredJob | None:
    """The job of that name, or None when there is none (or Redis holds an entry this code did not write)."""
    if not is_job_name(name):  # RedBeat's lock and sorted set share the prefix
        return None
    return _stored(client.hgetall(keys.redbeat_entry(name)))


def read_jobs(client: redis.Redis) -> list[StoredJob]:
    """Every job beat holds, by name."""
    jobs = [_stored(client.hgetall(_text(key))) for key in client.zrange(keys.REDBEAT_SCHEDULE, 0, -1)]
    return sorted((job for job in jobs if job is not None), key=lambda job: job.job.name)


def live_entries(client: redis.Redis) -> dict[str, LiveEntry]:
    """Every entry in RedBeat's schedule by job name, ours or not, for reconciling."""
    entries = {}
    for raw_key in client.zrange(keys.REDBEAT_SCHEDULE, 0, -1):
        key = _text(raw_key)
        name = key.removeprefix(keys.REDBEAT_PREFIX)
        stored = _stored(client.hgetall(key))
        entries[name] = LiveEntry(stored.job, stored.source) if stored else LiveEntry(None, None)
    return entries


def forget_statics(client: redis.Redis) -> None:
    """Drop RedBeat's list of static entries: jobs are no longer static, so it would only delete live ones."""
    client.delete(keys.REDBEAT_STATICS)


def _stored(fields: dict) -> StoredJob | None:
    fields = {_text(k): _text(v) for k, v in fields.items()}
    if "definition" not in fields:
        return None
    stored = json.loads(fields["definition"], cls=RedBeatJSONDecoder)
    if "job" not in stored:
        return None
    try:
        job = parse_job(stored["job"])
    except InvalidJob:
        return None  # written by a release whose rules differ; beat start reconciles it
    last = json.loads(fields["last_run"]) if "last_run" in fields else {}
    return StoredJob(job, stored.get("source", "operator"), _meta_anchor(fields.get("meta")),
                     datetime.fromisoformat(last["at"]) if "at" in last else None, last.get("id"))


def _meta_anchor(meta: str | bytes | None) -> datetime | None:
    if not meta:
        return None
    return json.loads(_text(meta), cls=RedBeatJSONDecoder).get("last_run_at")


def _text(value: str | bytes) -> str:
    # The API's client returns bytes, RedBeat's decodes: both are read here.
    return value.decode() if isinstance(value, bytes) else value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
