"""One JSON error format for every failure: {"status": "error", "message": ..., "parameter"?: ...}."""

from __future__ import annotations

import logging

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from services.core.pipeline.runs import InvalidRunRequest

__all__ = ["ApiError", "bad_parameter", "error_response", "register_error_handlers"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on: an HTTP status, a message and, when one is to blame, the parameter."""

    def __init__(self, status: int, message: str, parameter: str | None = None,
                 headers: dict[str, str] | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter
        self.headers = headers or {}
        self.extra = extra  # more fields of the error body, e.g. a run's state on a 409


def bad_parameter(parameter: str, message: str) -> ApiError:
    """A 400 naming the query parameter that is missing or malformed."""
    return ApiError(400, message, parameter)


def error_response(status: int, message: str, parameter: str | None = None,
                   headers: dict[str, str] | None = None, **extra: object) -> Response:
    """The error body every route and handler uses."""
    body: dict[str, object] = {"status": "error", "message": message}
    if parameter is not None:
        body["parameter"] = parameter
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, exc.parameter, exc.headers, **exc.extra)


def _invalid_run_request(exc: InvalidRunRequest) -> Response:
    return error_response(400, str(exc), exc.parameter)


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, NotFound):
        message = f"no such route: {request.path}"
    elif isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(exc.valid_methods or []))
        message = f"method {request.method} not allowed on {request.path}; allowed: {allowed}"
    else:
        message = exc.description or exc.name
    # Keep werkzeug's headers (Allow on a 405), but never its HTML content type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(exc.code or 500, message, headers=headers)


def _redis_unavailable(exc: Exception) -> Response:
    log.error("redis unavailable on %s %s: %s", request.method, request.path, exc)
    return error_response(503, "the broker (Redis) is unavailable; try again shortly")


def _redis_full(exc: Exception) -> Response:
    # maxmemory with noeviction: Redis refuses writes rather than dropping queued work.
    log.error("redis is full (maxmemory) on %s %s: %s", request.method, request.path, exc)
    return error_response(503, "the broker (Redis) is full (maxmemory reached): no new work is accepted until it "
                               "drains; work already queued is kept. See docs/operations.md, Redis unreachable")


def _database_unavailable(exc: Exception) -> Response:
    log.error("database unavailable on %s %s: %s", request.method, request.path, exc)
    return error_response(503, "the database is unavailable; try again shortly")


def _unhandled(exc: Exception) -> Response:
    # The detail goes to the log, not to the client: it may contain internals.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal error; the API logs have the details")


def register_error_handlers(app: Flask) -> None:
    """Route every error, expected or not, to a JSON response (Flask picks the most specific class)."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(InvalidRunRequest, _invalid_run_request)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.exceptions.ConnectionError, _redis_unavailable)
    app.register_error_handler(redis.exceptions.TimeoutError, _redis_unavailable)
    app.register_error_handler(redis.exceptions.OutOfMemoryError, _redis_full)
    app.register_error_handler(kombu.exceptions.OperationalError, _redis_unavailable)
    app.register_error_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
    app.register_error_handler(Exception, _unhandled)
