"""The OpenAPI 3.0 description of every route, as a Python dict served at GET /api/openapi.json."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from services.api.routes.params import read_query
from services.api.routes.read import CANDLE_LIMIT, RUN_LIMIT, SIGNAL_LIMIT
from services.core.pipeline.runs import KINDS, RUN_STATES

__all__ = ["OPENAPI", "openapi_routes"]

openapi_routes = Blueprint("openapi", __name__)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict, required: bool = False, example: object = None) -> dict:
    param = {"name": name, "in": "query", "required": required, "description": description, "schema": schema}
    if example is not None:
        param["example"] = example
    return param


def _limit(default_max: tuple[int, int]) -> dict:
    default, maximum = default_max
    return _query("limit", f"Rows to return, 1 to {maximum}.",
                  {"type": "integer", "minimum": 1, "maximum": maximum, "default": default})


def _list_of(key: str, item: str) -> dict:
    return {"type": "object", "required": ["count", key],
            "properties": {"count": {"type": "integer"}, key: {"type": "array", "items": _ref(item)}}}


_STRING = {"type": "string"}
_INSTANT = {"type": "string", "example": "2024-01-31T00:00:00Z",
            "description": "ISO 8601 (UTC unless an offset is given) or epoch milliseconds"}
_TIMESTAMP = {"type": "string", "format": "date-time", "nullable": True}
_NUMBER = {"type": "number", "nullable": True}

_SYMBOL = _query("symbol", "Instrument symbol, BASE/QUOTE in capitals.", _STRING, example="BTC/USD")
_TIMEFRAME = _query("timeframe", "Candle timeframe (ccxt notation).", _STRING, example="1h")
_EXCHANGE = _query("exchange", "ccxt exchange id; defaults to the configured EXCHANGE.", _STRING)
_SINCE = _query("since", "Only rows at or after this instant.", _INSTANT)
_UNTIL = _query("until", "Only rows before this instant (must be after since).", _INSTANT)

_BAD_REQUEST = _json("A parameter is missing, unknown, repeated or malformed; `parameter` names it.", _ref("Error"))
_UNAVAILABLE = _json("Redis or Postgres is unavailable.", _ref("Error"))

_SCHEMAS = {
    "Error": {
        "type": "object", "required": ["status", "message"],
        "properties": {"status": {"type": "string", "enum": ["error"]}, "message": _STRING,
                       "parameter": {"type": "string", "description": "The query parameter to blame, if any"}},
    },
    "RunQueued": {
        "type": "object", "required": ["status", "message", "task_id", "task_type", "duplicate"],
        "properties": {
            "status": {"type": "string", "enum": ["success"]}, "message": _STRING,
            "task_id": {"type": "string", "description": "The run id; poll it at GET /api/manual-update/"},
            "task_type": {"type": "string", "enum": list(KINDS)},
            "scope": {"type": "object", "additionalProperties": _STRING},
            "duplicate": {"type": "boolean", "description": "true: an identical run was already running"},
        },
    },
    "StageResult": {
        "type": "object", "required": ["instrument", "stage", "status"],
        "description": "One stage of one instrument; stages add their own counts (candles, signals, ...).",
        "properties": {"instrument": {"type": "string", "example": "BTC/USD 1h"}, "stage": _STRING,
                       "status": {"type": "string", "enum": ["ok", "failed", "skipped"]},
                       "seconds": {"type": "number"}, "error": _STRING, "reason": _STRING},
        "additionalProperties": True,
    },
    "RunStatus": {
        "type": "object", "required": ["task_id", "status", "ready", "successful", "result", "error"],
        "properties": {
            "task_id": _STRING, "task_type": {"type": "string", "enum": list(KINDS)},
            "scope": {"type": "object"}, "status": {"type": "string", "enum": list(RUN_STATES)},
            "ready": {"type": "boolean", "description": "The run has finished (SUCCESS, PARTIAL or FAILURE)"},
            "successful": {"type": "boolean"},
            "result": {"type": "array", "items": _ref("StageResult")},
            "error": {"type": "string", "nullable": True, "description": "Failures named by instrument and stage"},
            "errors": {"type": "array", "items": {"type": "object"}},
            "created_at": _TIMESTAMP, "started_at": _TIMESTAMP, "finished_at": _TIMESTAMP,
        },
    },
    "Instrument": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "exchange": _STRING, "symbol": _STRING,
                       "timeframes": {"type": "array", "items": _STRING}, "active": {"type": "boolean"},
                       "created_at": _TIMESTAMP},
    },
    "Candle": {
        "type": "object",
        "properties": {"ts": {"type": "string", "format": "date-time"}, "open": _NUMBER, "high": _NUMBER,
                       "low": _NUMBER, "close": _NUMBER, "volume": _NUMBER,
                       "is_closed": {"type": "boolean",
                                     "description": "false: the still-open bar, replaced until it closes"}},
    },
    "CandleList": {
        "type": "object", "required": ["exchange", "symbol", "timeframe", "count", "candles"],
        "properties": {"exchange": _STRING, "symbol": _STRING, "timeframe": _STRING, "count": {"type": "integer"},
                       "candles": {"type": "array", "items": _ref("Candle")}},
    },
    "Signal": {
        "type": "object",
        "properties": {"exchange": _STRING, "symbol": _STRING, "timeframe": _STRING,
                       "ts": {"type": "string", "format": "date-time"}, "strategy": _STRING,
                       "side": _STRING, "strength": _NUMBER, "price": _NUMBER,
                       "inputs": {"type": "object", "description": "The values that produced the signal"},
                       "created_at": _TIMESTAMP},
    },
    "Run": {
        "type": "object",
        "properties": {"task_id": _STRING, "task_type": _STRING, "scope": {"type": "object"},
                       "status": {"type": "string", "enum": list(RUN_STATES)},
                       "errors": {"type": "array", "items": {"type": "object"}},
                       "created_at": _TIMESTAMP, "started_at": _TIMESTAMP, "finished_at": _TIMESTAMP},
    },
    "Health": {
        "type": "object", "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "checks": {"type": "object", "properties": {
                "redis": _STRING, "postgres": _STRING,
                "queues": {"type": "object", "additionalProperties": {"type": "array", "items": _STRING},
                           "description": "Queue name → the workers consuming it"}}},
        },
    },
    "HealthFailure": {
        "allOf": [_ref("Error"), {"type": "object", "properties": {"checks": {"type": "object"}}}],
    },
}

_PATHS = {
    "/api/manual-update/": {
        "post": {
            "summary": "Start a pipeline run", "operationId": "startManualUpdate", "tags": ["runs"],
            "security": [{"bearerAuth": []}],
            "parameters": [
                _query("task", "Run kind.", {"type": "string", "enum": list(KINDS)}, required=True),
                _query("symbol", "Narrow the run to one symbol (required for backfill).", _STRING, example="BTC/USD"),
                _query("timeframe", "Narrow the run to one timeframe.", _STRING, example="1h"),
                _query("since", "Start of a backfill range (required for backfill).", _INSTANT),
                _query("until", "End of a backfill range.", _INSTANT),
            ],
            "responses": {
                "202": {**_json("Queued; poll the Location header.", _ref("RunQueued")),
                        "headers": {"Location": {"schema": _STRING}}},
                "200": _json("The same kind and scope is already running: its id, duplicate=true.", _ref("RunQueued")),
                "400": _BAD_REQUEST,
                "401": {**_json("Missing or wrong bearer token.", _ref("Error")),
                        "headers": {"WWW-Authenticate": {"schema": _STRING}}},
                "503": _UNAVAILABLE,
            },
        },
        "get": {
            "summary": "A run's status", "operationId": "getManualUpdateStatus", "tags": ["runs"],
            "parameters": [_query("task_id", "The id POST returned.", _STRING, required=True)],
            "responses": {"200": _json("The run's state and per-instrument stage results.", _ref("RunStatus")),
                          "400": _BAD_REQUEST, "404": _json("No run with this id.", _ref("Error")),
                          "503": _UNAVAILABLE},
        },
    },
    "/api/instruments": {
        "get": {
            "summary": "Instruments", "operationId": "listInstruments", "tags": ["data"],
            "parameters": [_query("active", "Only active (true) or inactive (false) instruments.",
                                  {"type": "boolean"})],
            "responses": {"200": _json("All instruments, by exchange and symbol.",
                                       _list_of("instruments", "Instrument")),
                          "400": _BAD_REQUEST, "503": _UNAVAILABLE},
        },
    },
    "/api/candles": {
        "get": {
            "summary": "Candles of one symbol and timeframe", "operationId": "listCandles", "tags": ["data"],
            "description": "The newest `limit` candles in [since, until), returned oldest first.",
            "parameters": [{**_SYMBOL, "required": True},
                           {**_TIMEFRAME, "description": "Candle timeframe; defaults to the first configured one."},
                           _EXCHANGE, _SINCE, _UNTIL, _limit(CANDLE_LIMIT)],
            "responses": {"200": _json("Candles, oldest first.", _ref("CandleList")), "400": _BAD_REQUEST,
                          "404": _json("No such instrument on the exchange.", _ref("Error")), "503": _UNAVAILABLE},
        },
    },
    "/api/signals": {
        "get": {
            "summary": "Signals", "operationId": "listSignals", "tags": ["data"],
            "parameters": [_SYMBOL, _TIMEFRAME, _query("strategy", "Strategy name.", _STRING), _EXCHANGE, _SINCE,
                           _limit(SIGNAL_LIMIT)],
            "responses": {"200": _json("Signals, newest first.", _list_of("signals", "Signal")),
                          "400": _BAD_REQUEST, "503": _UNAVAILABLE},
        },
    },
    "/api/runs": {
        "get": {
            "summary": "Recent pipeline runs", "operationId": "listRuns", "tags": ["runs"],
            "description": "Runs a worker has started, newest first; queued runs appear once started.",
            "parameters": [_query("state", "Only runs in this state.", {"type": "string", "enum": list(RUN_STATES)}),
                           _query("task", "Only runs of this kind.", {"type": "string", "enum": list(KINDS)}),
                           _limit(RUN_LIMIT)],
            "responses": {"200": _json("Runs, newest first.", _list_of("runs", "Run")), "400": _BAD_REQUEST,
                          "503": _UNAVAILABLE},
        },
    },
    "/api/health": {
        "get": {
            "summary": "Readiness: Redis, Postgres and a worker per queue", "operationId": "getHealth",
            "tags": ["health"],
            "responses": {"200": _json("Everything is there.", _ref("Health")),
                          "503": _json("Something is missing; the message names it.", _ref("HealthFailure"))},
        },
    },
    "/api/health/live": {
        "get": {
            "summary": "Liveness: the process serves requests", "operationId": "getLiveness", "tags": ["health"],
            "responses": {"200": _json("Alive.", {"type": "object", "properties": {"status": {"type": "string"}}})},
        },
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document", "operationId": "getOpenApi", "tags": ["meta"],
            "responses": {"200": _json("OpenAPI 3.0 document.", {"type": "object"})},
        },
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics of the API", "operationId": "getMetrics", "tags": ["meta"],
            "responses": {"200": {"description": "Prometheus text exposition.",
                                  "content": {"text/plain": {"schema": _STRING}}}},
        },
    },
}

OPENAPI: dict = {
    "openapi": "3.0.3",
    "info": {
        "title": "candleflow API",
        "version": "1.0.0",
        "description": "Trigger pipeline runs, poll their status, and read candles, signals and runs. "
                       "Errors are JSON: {\"status\": \"error\", \"message\": ..., \"parameter\": ...}.",
    },
    "tags": [{"name": "runs"}, {"name": "data"}, {"name": "health"}, {"name": "meta"}],
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                           "description": "The API_TOKEN setting"}},
    },
}


@openapi_routes.get("/api/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI document above."""
    read_query(())
    return jsonify(OPENAPI)
