"""Starting pipeline runs on demand, and polling a run's status."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, url_for

from services.api.auth import require_token
from services.api.errors import ApiError, bad_parameter
from services.api.routes.deps import deps
from services.api.routes.params import name_param, read_query
from services.core.pipeline.runs import KINDS, run_status, submit_run, validate_request

__all__ = ["trigger_routes"]

log = logging.getLogger(__name__)

trigger_routes = Blueprint("trigger", __name__)

_TRIGGER_PARAMS = ("task", "symbol", "timeframe", "since", "until")


@trigger_routes.post("/api/manual-update/", strict_slashes=False)
@require_token
def start_manual_update() -> tuple[Response, int]:
    """Queue a run of `task` (optionally one symbol/timeframe/range); a running twin is returned, not doubled."""
    params = read_query(_TRIGGER_PARAMS)
    if "task" not in params:
        raise bad_parameter("task", f"task is required; valid types: {', '.join(KINDS)}")
    # One set of rules for the API, the CLI and the beat: InvalidRunRequest names the parameter.
    run_request = validate_request(params["task"], params.get("symbol"), params.get("timeframe"),
                                   params.get("since"), params.get("until"))

    run_id, created = submit_run(deps().celery, deps().redis, run_request)
    body = {"status": "success", "task_id": run_id, "task_type": run_request.kind,
            "scope": run_request.scope(), "duplicate": not created}
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
def manual_update_status() -> Response:
    """A run's state and one result entry per instrument and stage."""
    params = read_query(("task_id",))
    if "task_id" not in params:
        raise bad_parameter("task_id", "task_id is required: the id POST /api/manual-update/ returned")
    task_id = name_param(params["task_id"], "task_id")
    status = run_status(deps().engine, deps().redis, task_id)
    if status is None:
        raise ApiError(404, f"unknown task id {task_id!r}", "task_id")
    return jsonify(status)
