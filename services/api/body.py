"""JSON request bodies: the one way a route reads one, refusing anything that is not JSON with a 400."""

from __future__ import annotations

import json

from flask import request

from services.api.errors import ApiError

__all__ = ["json_body"]


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def json_body() -> object:
    """The request's JSON body, parsed; a 400 naming `body` when it is missing, not JSON or not declared so."""
    if not request.is_json:
        raise ApiError(400, "send the body as JSON, with 'Content-Type: application/json'", "body")
    try:
        # NaN and Infinity are Python's extensions, not JSON.
        return json.loads(request.get_data(), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the body is not valid JSON", "body") from None
