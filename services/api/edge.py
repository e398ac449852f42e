"""What every HTTP answer carries: security headers, no server banner, and JSON even for gunicorn's own errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, Response, abort, current_app, request

__all__ = ["SECURITY_HEADERS", "SERVER_NAME", "allow_body", "install_security_headers", "json_error_bytes",
           "write_json_error"]

F = TypeVar("F", bound=Callable)

# An API answers with data, never with a page to render, frame or cache.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Sent as the Server header instead of the server's name and version.
SERVER_NAME = "candleflow"
# Long enough to say what was wrong, short enough that an oversize request is never echoed back.
_LONGEST_DETAIL = 200


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def allow_body(limit: Callable[[], int]) -> Callable[[F], F]:
    """Let one route take bodies up to `limit()` bytes (an upload) instead of the app's MAX_CONTENT_LENGTH.
    Put it right under the route decorator: it marks the view the app registers."""
    def mark(view: F) -> F:
        view.body_limit = limit  # type: ignore[attr-defined]
        return view
    return mark


def _refuse_oversize_bodies() -> None:
    # Flask enforces MAX_CONTENT_LENGTH only when a view reads the body; a route that never
    # reads one would otherwise accept any size in silence. A route marked by allow_body has its own.
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    own = getattr(view, "body_limit", None)
    limit = own() if own is not None else current_app.config.get("MAX_CONTENT_LENGTH")
    if own is not None:
        request.max_content_length = limit  # what reading the form enforces, too
    if limit is not None and (request.content_length or 0) > limit:
        abort(413, f"request body over {limit} bytes")


def install_security_headers(app: Flask) -> None:
    """Every response of `app`, errors included, carries SECURITY_HEADERS; oversize bodies are refused first."""
    app.before_request(_refuse_oversize_bodies)
    app.after_request(_add_security_headers)


def json_error_bytes(status: int, reason: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response in the API's error shape, for errors raised before Flask sees the request."""
    message = f"{reason}: {detail[:_LONGEST_DETAIL]}" if detail else reason
    body = json.dumps({"status": "error", "message": message}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close", "Content-Type: application/json",
            f"Content-Length: {len(body)}", f"Server: {SERVER_NAME}",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for gunicorn.util.write_error (installed by gunicorn.conf.py): JSON instead of an HTML page."""
    from gunicorn.util import write_nonblock  # deferred: only gunicorn processes need it

    write_nonblock(sock, json_error_bytes(status_int, reason, mesg))
