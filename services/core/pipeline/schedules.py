"""Schedule operations for the API and the CLI: list, add, change, delete, reset, run; beat start's reconcile."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis
from celery import Celery
from sqlalchemy import Engine

from services.core.pipeline import job_store
from services.core.pipeline.job_plan import Planned, operator_state, plan_writes, reconcile
from services.core.pipeline.jobs import (
    MAINTENANCE_TASKS,
    Job,
    apply_patch,
    is_job_name,
    parse_job,
    schedule_changed,
)
from services.core.pipeline.runs import request_of, submit_run
from services.core.priority import broker_priority
from services.core.store import schedule_changes

__all__ = ["JobNotFound", "JobConflict", "list_jobs", "show_job", "add_job", "change_job", "delete_job",
           "reset_job", "run_job", "job_history", "reconcile_schedule"]

log = logging.getLogger(__name__)



class JobNotFound(LookupError):
    """No job of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule job {name[:40]!r}")


class JobConflict(Exception):
    """The change contradicts what exists: a duplicate name, or a reset of a job with no default."""


def _now() -> datetime:
    return datetime.now(UTC)


def _stored(client: redis.Redis, name: str) -> job_store.StoredJob:
    stored = job_store.read_job(client, name)
    if stored is None:
        raise JobNotFound(name)
    return stored


def list_jobs(client: redis.Redis) -> list[dict]:
    now = _now()
    return [stored.view(now) for stored in job_store.read_jobs(client)]


def show_job(client: redis.Redis, name: str) -> dict:
    return _stored(client, name).view(_now())


def add_job(client: redis.Redis, engine: Engine, data: object, actor: str, default_timezone: str) -> dict:
    """Add an operator's job; it first runs at its next time from now. JobConflict if the name is taken."""
    job = parse_job(data, default_timezone)
    with engine.begin() as conn:  # the history row commits only once Redis holds the job
        schedule_changes.record_change(conn, job.name, actor, "add", None, job.spec())
        if not job_store.write_job(client, job, "operator", _now(), restart_clock=True, create=True):
            raise JobConflict(f"a schedule job named {job.name!r} already exists; change it with PATCH")
    log.info("schedule job %s added by %s: %s", job.name, actor, job.spec())
    return show_job(client, job.name)


def change_job(client: redis.Redis, engine: Engine, name: str, patch: object, actor: str,
               default_timezone: str) -> dict:
    """Change fields of a job; a new time, zone or a re-enable counts its next run from now."""
    stored = _stored(client, name)
    job = apply_patch(stored.job, patch, default_timezone)
    _write(client, engine, stored.job, Planned(job, "operator"), actor, "change")
    return show_job(client, name)


def delete_job(client: redis.Redis, engine: Engine, name: str, actor: str) -> dict:
    """Remove a job; a default one stays removed (across beat restarts) until it is reset. Returns it as it was."""
    stored = _stored(client, name)
    with engine.begin() as conn:
        schedule_changes.record_change(conn, name, actor, "delete", stored.job.spec(), None)
        job_store.delete_job(client, name)
    log.info("schedule job %s deleted by %s", name, actor)
    return stored.view(_now())


def reset_job(client: redis.Redis, engine: Engine, name: str, seed: dict[str, Planned], actor: str) -> dict:
    """Return a job to what the deployment defines (the code's default, SCHEDULE_OVERRIDES applied)."""
    if name not in seed:
        if job_store.read_job(client, name) is None:
            raise JobNotFound(name)
        raise JobConflict(f"schedule job {name!r} has no default to reset to; an operator added it")
    stored = job_store.read_job(client, name)
    _write(client, engine, stored.job if stored else None, seed[name], actor, "reset")
    return show_job(client, name)


def _write(client: redis.Redis, engine: Engine, before: Job | None, planned: Planned, actor: str,
           action: str) -> None:
    with engine.begin() as conn:
        schedule_changes.record_change(conn, planned.job.name, actor, action,
                                       before.spec() if before else None, planned.job.spec())
        job_store.write_job(client, planned.job, planned.source, _now(),
                            restart_clock=schedule_changed(before, planned.job))
    log.info("schedule job %s: %s by %s: %s", planned.job.name, action, actor, planned.job.spec())


def run_job(celery: Celery, client: redis.Redis, name: str) -> tuple[str, bool, dict]:
    """Start the job now, off its schedule (which stays as it was): (run id, whether a new run was queued,
    the job). A run job goes through submit_run, so a running twin is returned rather than doubled."""
    stored = _stored(client, name)
    job = stored.job
    if job.task in MAINTENANCE_TASKS:
        result = celery.send_task(MAINTENANCE_TASKS[job.task], priority=broker_priority(job.priority))
        run_id, created = result.id, True
    else:
        run_id, created = submit_run(celery, client, request_of(job.task, job.run_scope()), priority=job.priority)
    if created:
        job_store.record_run(client, name, run_id, _now())
    return run_id, created, show_job(client, name)


def job_history(client: redis.Redis, engine: Engine, name: str, limit: int) -> list[dict]:
    """The job's recorded changes, newest first; JobNotFound for a name neither live nor ever changed."""
    if not is_job_name(name):
        raise JobNotFound(name)
    with engine.connect() as conn:
        rows = schedule_changes.job_history(conn, name, limit)
    if not rows and job_store.read_job(client, name) is None:
        raise JobNotFound(name)
    return rows


def reconcile_schedule(client: redis.Redis, engine: Engine, seed: dict[str, Planned],
                       default_timezone: str) -> dict[str, list[str]]:
    """Make Redis hold seed + history (beat start): survives a flushed Redis and a new release's new defaults.
    Returns the names written and deleted, and problems found in the history."""
    with engine.connect() as conn:
        latest = schedule_changes.latest_changes(conn)
    operators, problems = operator_state(latest, default_timezone)
    for problem in problems:
        log.warning("schedule reconcile: %s", problem)
    writes, deletes = plan_writes(reconcile(seed, operators), job_store.live_entries(client))
    now = _now()
    for planned, restart in writes:
        job_store.write_job(client, planned.job, planned.source, now, restart_clock=restart)
    for name in deletes:
        job_store.delete_job(client, name)
    job_store.forget_statics(client)
    summary = {"written": [planned.job.name for planned, _ in writes], "deleted": deletes, "problems": problems}
    log.info("schedule reconciled: %d written %s, %d deleted %s", len(writes), summary["written"], len(deletes),
             deletes)
    return summary
