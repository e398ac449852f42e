"""One run by its id: its status at GET /api/runs/<id>, and cancelling it."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, jsonify

from services.api.auth import require_token
from services.api.errors import ApiError
from services.api.query import NoParameters, with_query
from services.api.routes.deps import deps
from services.core.actors import API_ACTOR
from services.core.pipeline.cancel import RunNotCancellable, cancel_run
from services.core.pipeline.runs import run_status

__all__ = ["run_routes"]

log = logging.getLogger(__name__)

run_routes = Blueprint("runs", __name__)

# A run id as the trigger hands them out (a UUID) or a test names them; anything else is no run.
_RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _checked(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise ApiError(400, f"malformed run id {run_id[:40]!r}: expected letters, digits, '_', '.', ':' or '-' "
                            "(at most 64)", "run_id")
    return run_id


@run_routes.get("/api/runs/<run_id>")
@with_query(NoParameters)
def show_run(run_id: str, query: NoParameters) -> Response:
    """The run's status: state, priority, schedule, per-instrument stage results; a cancelled run says who and what."""
    status = run_status(deps().engine, deps().redis, _checked(run_id))
    if status is None:
        raise ApiError(404, f"unknown run id {run_id!r}", "run_id")
    return jsonify(status)


@run_routes.post("/api/runs/<run_id>/cancel")
@require_token
@with_query(NoParameters)
def cancel(run_id: str, query: NoParameters) -> Response:
    """Cancel a run not yet finished: CANCELLED, its tasks revoked, its lock freed; 409 if it already finished."""
    try:
        outcome = cancel_run(deps().celery, deps().redis, deps().engine, _checked(run_id), API_ACTOR)
    except RunNotCancellable as exc:
        raise ApiError(409, str(exc), "run_id", state=exc.state) from None
    if outcome is None:
        raise ApiError(404, f"unknown run id {run_id!r}", "run_id")
    log.info("run %s cancelled over the API; %d task id(s) revoked", run_id, len(outcome.revoked))
    return jsonify(run_status(deps().engine, deps().redis, run_id))
