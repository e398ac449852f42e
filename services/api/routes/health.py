"""Health: a liveness probe, and readiness (Redis, the broker, Postgres, a worker per queue) from a background view."""

from __future__ import annotations

from celery import Celery
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from services.api.errors import error_response
from services.api.health_view import HealthReading, HealthView
from services.api.query import NoParameters, with_query
from services.api.routes.deps import deps
from services.core.celery_app import QUEUES

__all__ = ["health_routes", "queue_consumers", "check_dependencies", "INSPECT_TIMEOUT_S"]

health_routes = Blueprint("health", __name__)

# Bounds the whole readiness check: workers that have not answered by then count as absent.
INSPECT_TIMEOUT_S = 1.0
_VIEW_KEY = "candleflow.health_view"


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


def _ping_broker(celery: Celery) -> None:
    # One connection attempt over BROKER_URL (RabbitMQ, Sentinel, ...), bounded like the inspect.
    with celery.connection_for_write(connect_timeout=INSPECT_TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=INSPECT_TIMEOUT_S)


def check_dependencies(redis_client, engine, celery: Celery, separate_broker: bool = False) -> HealthReading:
    """Ask Redis (REDIS_URL), the broker when it is another server (BROKER_URL), Postgres and the workers once;
    every failure named."""
    checks: dict[str, object] = {}
    problems: list[str] = []
    try:
        redis_client.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {_failure(exc)}"
        problems.append(f"redis unreachable ({_failure(exc)})")
    if separate_broker:
        try:
            _ping_broker(celery)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {_failure(exc)}"
            problems.append(f"broker unreachable ({_failure(exc)})")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"error: {_failure(exc)}"
        problems.append(f"postgres unreachable ({_failure(exc).splitlines()[0]})")
    if checks.get("broker", checks["redis"]) == "ok":
        try:
            consumers = queue_consumers(celery)
            checks["queues"] = consumers
            problems += [f"no worker consuming queue {queue!r}" for queue, workers in consumers.items() if not workers]
        except Exception as exc:
            checks["queues"] = f"error: {_failure(exc)}"
            problems.append(f"cannot ask the workers ({_failure(exc)})")
    else:
        # Workers are asked through the broker: with Redis down the answer would only be a slow timeout.
        checks["queues"] = "skipped: broker unreachable"
    return HealthReading(checks, problems)


def _health_view() -> HealthView:
    app = current_app._get_current_object()
    view = app.extensions.get(_VIEW_KEY)
    if view is None:
        api = deps()
        view = app.extensions.setdefault(_VIEW_KEY, HealthView(
            lambda: check_dependencies(api.redis, api.engine, api.celery,
                                       separate_broker=api.settings.broker_url != api.settings.redis_url),
            api.settings.api_health_refresh_s))
    return view


@health_routes.get("/api/health")
@with_query(NoParameters)
def readiness(query: NoParameters) -> Response | tuple[Response, int]:
    """200 when Redis, Postgres and a worker per queue are all there; 503 naming whatever is missing.

    Answered from the background view (`age_s` says how old it is), so it costs no broker round trip.
    """
    view = _health_view()
    # Only a process's first call waits, for one round of checks (the inspect timeout bounds it).
    reading = view.read(first_wait_s=INSPECT_TIMEOUT_S + 10)
    if reading is None:
        return error_response(503, "health checks have not answered yet")
    age = round(reading.age_s(), 3)
    problems = list(reading.problems)
    if view.stale(reading):
        problems.append(f"health view is {age} s old: its refresher is stuck")
    timing = {"checked_at": reading.checked_at_iso(), "age_s": age}
    if problems:
        return error_response(503, "; ".join(problems), checks=reading.checks, **timing)
    return jsonify({"status": "ok", "checks": reading.checks, **timing})
