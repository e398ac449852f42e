"""Answering a simulator request: JSON bodies, and a fault rule's reply in place of the normal one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from flask import Response

from .controller import Simulator
from .faults import RequestContext, error_reply

__all__ = ["JSON_TYPE", "dumps", "json_response", "reply"]

JSON_TYPE = "application/json;charset=UTF-8"


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def json_response(obj: object, status: int = 200) -> Response:
    return Response(dumps(obj), status, content_type=JSON_TYPE)


def reply(sim: Simulator, ctx: RequestContext, produce: Callable[[], str]) -> Response:
    """Answer with produce() (JSON text) unless a fault rule fires for this request; a fault is
    rendered the way the simulator's dialect reports it."""
    rule = sim.faults.request_fault(ctx)
    if rule is not None and rule.kind == "timeout":
        time.sleep(rule.seconds)  # longer than the client waits; it sees a read timeout
        rule = None
    if rule is None:
        return Response(produce(), 200, content_type=JSON_TYPE)
    normal = produce() if rule.kind == "malformed_json" else ""
    status, headers, body = error_reply(rule, normal, sim.now_ms(), sim.dialect)
    return Response(body, status, headers=headers)
