"""Starting pipeline runs on demand, and polling a run's status."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, url_for

from services.api.auth import require_token
from services.api.errors import ApiError
from services.api.query import with_query
from services.api.routes.deps import deps
from services.api.routes.params import RunStatusQuery, TriggerQuery
from services.core.pipeline.runs import run_status, schedule_run, submit_run
from services.core.pipeline.scopes import scope_exchange, scope_symbols, scope_timeframes
from services.core.store.universe import UniverseError, admit_scope

__all__ = ["trigger_routes"]

log = logging.getLogger(__name__)

trigger_routes = Blueprint("trigger", __name__)


@trigger_routes.post("/api/manual-update/", strict_slashes=False)
@require_token  # before the parameters: an anonymous caller learns nothing about them
@with_query(TriggerQuery)
def start_manual_update(query: TriggerQuery) -> tuple[Response, int]:
    """Queue a run of `task` (optionally one symbol/timeframe/range) at `priority`, now or later (countdown, eta);
    a running twin is returned, not doubled."""
    # One set of rules for the API, the CLI and the beat: InvalidRunRequest names the parameter.
    run_request = query.run_request()
    start_at = query.start_at(datetime.now(UTC))
    # Only instruments of the universe are run: a missing one is refused, or added with add=true.
    try:
        with deps().engine.begin() as conn:
            changes = admit_scope(conn, scope_exchange(run_request.scope(), deps().settings.exchange),
                                  scope_symbols(run_request.scope()),
                                  scope_timeframes(run_request.scope()), query.add, "api", deps().settings.timeframes)
    except UniverseError as exc:
        raise ApiError(exc.status, str(exc), exc.parameter) from None
    for change in changes:
        log.info("universe: %s (add=true on a %s run)", change, run_request.kind)

    if start_at is not None:
        run_id = schedule_run(deps().celery, deps().engine, run_request, start_at, query.priority)
        log.info("scheduled %s run %s %s for %s", run_request.kind, run_id, run_request.scope(), start_at.isoformat())
        body = {"status": "success", "task_id": run_id, "task_type": run_request.kind, "scope": run_request.scope(),
                "duplicate": False, "priority": query.priority, "scheduled_for": start_at.isoformat(),
                "message": f"{run_request.kind} run SCHEDULED for {start_at.isoformat()}; "
                           f"poll GET /api/runs/{run_id}"}
        response = jsonify(body)
        response.headers["Location"] = url_for("trigger.manual_update_status", task_id=run_id)
        return response, 202
    run_id, created = submit_run(deps().celery, deps().redis, run_request, query.priority)
    body = {"status": "success", "task_id": run_id, "task_type": run_request.kind,
            "scope": run_request.scope(), "duplicate": not created, "priority": query.priority}
    if created:
        log.info("queued %s run %s %s", run_request.kind, run_id, run_request.scope())
        body["message"] = f"{run_request.kind} run queued; poll GET /api/manual-update/?task_id={run_id}"
        status = 202
    else:
        body["message"] = (f"a {run_request.kind!r} run with the same scope is already running ({run_id}); "
                           "not queued again")
        status = 200
    response = jsonify(body)
    response.headers["Location"] = url_for("trigger.manual_update_status", task_id=run_id)
    return response, status


@trigger_routes.get("/api/manual-update/", strict_slashes=False)
@with_query(RunStatusQuery)
def manual_update_status(query: RunStatusQuery) -> Response:
    """A run's state and one result entry per instrument and stage."""
    status = run_status(deps().engine, deps().redis, query.task_id)
    if status is None:
        raise ApiError(404, f"unknown task id {query.task_id!r}", "task_id")
    return jsonify(status)
