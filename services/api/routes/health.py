"""Health: a liveness probe, and readiness that checks Redis, Postgres and a worker on every queue."""

from __future__ import annotations

from celery import Celery
from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from services.api.errors import error_response
from services.api.query import NoParameters, with_query
from services.api.routes.deps import deps
from services.core.celery_app import QUEUES

__all__ = ["health_routes", "queue_consumers", "INSPECT_TIMEOUT_S"]

health_routes = Blueprint("health", __name__)

# Bounds the whole readiness check: workers that have not answered by then count as absent.
INSPECT_TIMEOUT_S = 1.0


def queue_consumers(celery: Celery, timeout: float = INSPECT_TIMEOUT_S) -> dict[str, list[str]]:
    """Queue name → the workers consuming it, for every queue in QUEUES (empty list: nobody)."""
    replies = celery.control.inspect(timeout=timeout).active_queues() or {}
    consumers: dict[str, list[str]] = {queue: [] for queue in QUEUES}
    for worker, queues in sorted(replies.items()):
        for queue in queues or []:
            if queue.get("name") in consumers:
                consumers[queue["name"]].append(worker)
    return consumers


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


@health_routes.get("/api/health/live")
@with_query(NoParameters)
def liveness(query: NoParameters) -> Response:
    """The process serves requests; says nothing about its dependencies (for container liveness)."""
    return jsonify({"status": "ok"})


@health_routes.get("/api/health")
@with_query(NoParameters)
def readiness(query: NoParameters) -> Response | tuple[Response, int]:
    """200 when Redis, Postgres and a worker per queue are all there; 503 naming whatever is missing."""
    checks: dict[str, object] = {}
    problems: list[str] = []
    try:
        deps().redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {_failure(exc)}"
        problems.append(f"redis unreachable ({_failure(exc)})")
    try:
        with deps().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"error: {_failure(exc)}"
        problems.append(f"postgres unreachable ({_failure(exc).splitlines()[0]})")
    if checks["redis"] == "ok":
        try:
            consumers = queue_consumers(deps().celery)
            checks["queues"] = consumers
            problems += [f"no worker consuming queue {queue!r}" for queue, workers in consumers.items() if not workers]
        except Exception as exc:
            checks["queues"] = f"error: {_failure(exc)}"
            problems.append(f"cannot ask the workers ({_failure(exc)})")
    else:
        # Workers are asked through the broker: with Redis down the answer would only be a slow timeout.
        checks["queues"] = "skipped: broker unreachable"
    if problems:
        return error_response(503, "; ".join(problems), checks=checks)
    return jsonify({"status": "ok", "checks": checks})
