"""Bearer-token guard for the routes that change something."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps

from flask import request

from services.api.errors import ApiError
from services.api.routes.deps import deps

__all__ = ["require_token", "check_bearer_token"]

_CHALLENGE = 'Bearer realm="candleflow"'


def check_bearer_token(authorization: str | None, expected: str) -> None:
    """Raise a 401 ApiError unless `authorization` is `Bearer <expected>`."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <API_TOKEN>'",
                       headers={"WWW-Authenticate": _CHALLENGE})
    # An empty configured token must never match; compare_digest keeps the timing independent of the token.
    if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
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
