"""Bearer tokens: API_TOKEN for the routes that change something, and for reads where the deployment asks."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps

from flask import Flask, current_app, request

from services.api.errors import ApiError
from services.api.routes.deps import deps

__all__ = ["require_token", "check_bearer_token", "guard_reads", "PUBLIC_ENDPOINTS", "is_guarded"]

_CHALLENGE = 'Bearer realm="candleflow"'
# Open whatever API_READ_ACCESS says: container probes, Prometheus and the API's own description.
PUBLIC_ENDPOINTS = frozenset({"health.liveness", "health.readiness", "metrics.expose_metrics",
                              "openapi.serve_openapi"})


def check_bearer_token(authorization: str | None, *accepted: str) -> None:
    """Raise a 401 ApiError unless `authorization` is `Bearer <one of accepted>`."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <API_TOKEN>'",
                       headers={"WWW-Authenticate": _CHALLENGE})
    sent = token.strip().encode()
    # An empty configured token never matches; every candidate is compared (compare_digest), so
    # the timing tells nothing about which token came close.
    matches = [bool(expected) & hmac.compare_digest(sent, expected.encode()) for expected in accepted]
    if not any(matches):
        raise ApiError(401, "invalid bearer token",
                       headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'})


def require_token(view: Callable) -> Callable:
    """Decorate a view so it runs only for a request carrying the configured API_TOKEN."""

    @wraps(view)
    def guarded(*args, **kwargs):
        check_bearer_token(request.headers.get("Authorization"), deps().settings.api_token)
        return view(*args, **kwargs)

    guarded.requires_token = True  # the OpenAPI document reads it: a route is documented as guarded iff it is
    return guarded


def is_guarded(endpoint: str, view: Callable, reads_need_token: bool) -> bool:
    """Whether a request to `endpoint` must carry a token (either kind for reads, API_TOKEN for changes)."""
    return getattr(view, "requires_token", False) or (reads_need_token and endpoint not in PUBLIC_ENDPOINTS)


def _check_read_access() -> None:
    settings = deps().settings
    endpoint = request.endpoint
    # Unknown routes get their 404; changing routes check API_TOKEN themselves (a read token must not pass).
    if endpoint is None or not settings.reads_need_token:
        return
    view = current_app.view_functions[endpoint]
    if is_guarded(endpoint, view, True) and not getattr(view, "requires_token", False):
        check_bearer_token(request.headers.get("Authorization"), settings.api_token, settings.api_read_token)


def guard_reads(app: Flask) -> None:
    """Every route not in PUBLIC_ENDPOINTS asks for a token when API_READ_ACCESS=token: new routes are closed by
    default, not open until someone remembers them."""
    app.before_request(_check_read_access)
