"""The live schedule: list, add, change, delete, reset and run periodic jobs, and read their history."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, jsonify

from services.api.auth import require_token
from services.api.body import json_body
from services.api.errors import ApiError
from services.api.query import NoParameters, with_query
from services.api.routes.deps import deps
from services.api.routes.params import ScheduleHistoryQuery
from services.core.actors import API_ACTOR
from services.core.pipeline import schedules
from services.core.pipeline.job_plan import ScheduleError, seed_jobs
from services.core.pipeline.jobs import InvalidJob

__all__ = ["schedule_routes"]

log = logging.getLogger(__name__)

schedule_routes = Blueprint("schedules", __name__)

@contextmanager
def _job_errors() -> Iterator[None]:
    """Core's schedule errors as the API's: a bad field 400, an unknown job 404, a conflict 409."""
    try:
        yield
    except InvalidJob as exc:
        raise ApiError(400, str(exc), exc.field) from None
    except schedules.JobNotFound as exc:
        raise ApiError(404, str(exc), "name") from None
    except schedules.JobConflict as exc:
        raise ApiError(409, str(exc), "name") from None


def _timezone() -> str:
    return deps().settings.timezone


@schedule_routes.get("/api/schedules")
@with_query(NoParameters)
def list_schedules(query: NoParameters) -> Response:
    """Every job beat holds, with its next and last run."""
    jobs = schedules.list_jobs(deps().redis)
    return jsonify({"count": len(jobs), "jobs": jobs})


@schedule_routes.get("/api/schedules/<name>")
@with_query(NoParameters)
def show_schedule(name: str, query: NoParameters) -> Response:
    """One job."""
    with _job_errors():
        return jsonify(schedules.show_job(deps().redis, name))


@schedule_routes.post("/api/schedules")
@require_token
@with_query(NoParameters)
def add_schedule(query: NoParameters) -> tuple[Response, int]:
    """Add a job; it first runs at its next time from now."""
    with _job_errors():
        job = schedules.add_job(deps().redis, deps().engine, json_body(), API_ACTOR, _timezone())
    return jsonify(job), 201


@schedule_routes.patch("/api/schedules/<name>")
@require_token
@with_query(NoParameters)
def change_schedule(name: str, query: NoParameters) -> Response:
    """Change a job's cron, interval or trading sessions, timezone, enabled, scope or priority."""
    with _job_errors():
        return jsonify(schedules.change_job(deps().redis, deps().engine, name, json_body(), API_ACTOR,
                                            _timezone()))


@schedule_routes.delete("/api/schedules/<name>")
@require_token
@with_query(NoParameters)
def delete_schedule(name: str, query: NoParameters) -> Response:
    """Remove a job (a default job stays removed until reset); answers with the job as it was."""
    with _job_errors():
        return jsonify({"deleted": True, **schedules.delete_job(deps().redis, deps().engine, name,
                                                                API_ACTOR)})


@schedule_routes.post("/api/schedules/<name>/run")
@require_token
@with_query(NoParameters)
def run_schedule(name: str, query: NoParameters) -> tuple[Response, int]:
    """Start the job now, off its schedule; a run job's twin already running is returned, not doubled."""
    with _job_errors():
        run_id, created, job = schedules.run_job(deps().celery, deps().redis, name)
    body = {"status": "success", "task_id": run_id, "duplicate": not created, "job": job}
    return jsonify(body), 202 if created else 200


@schedule_routes.post("/api/schedules/<name>/reset")
@require_token
@with_query(NoParameters)
def reset_schedule(name: str, query: NoParameters) -> Response:
    """Return a job to the deployment's default (the code's table, SCHEDULE_OVERRIDES applied)."""
    settings = deps().settings
    try:
        seed = seed_jobs(settings.schedule_overrides, settings.timezone)
    except ScheduleError as exc:  # beat would not start either; say why rather than guess a default
        raise ApiError(409, f"no default to reset to: {exc}", "SCHEDULE_OVERRIDES") from None
    with _job_errors():
        return jsonify(schedules.reset_job(deps().redis, deps().engine, name, seed, API_ACTOR))


@schedule_routes.get("/api/schedules/<name>/history")
@with_query(ScheduleHistoryQuery)
def schedule_history(name: str, query: ScheduleHistoryQuery) -> Response:
    """The job's recorded changes, newest first: who, when, what it was before and after."""
    with _job_errors():
        changes = schedules.job_history(deps().redis, deps().engine, name, query.limit)
    return jsonify({"count": len(changes), "changes": changes})
