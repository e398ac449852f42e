"""The OpenAPI 3.0 document served at GET /api/openapi.json, generated from the app's own routes.

Paths and their path parameters come from the url_map, query parameters from each view's
parameter model, and the bearer requirement from require_token, so none of them can drift from
what the app serves. Summaries and response bodies are written here, per endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, jsonify

from services.api.auth import is_guarded
from services.api.formats import CSV_MEDIA_TYPE
from services.api.imports_openapi import IMPORT_OPERATIONS, IMPORT_SCHEMAS
from services.api.instruments_openapi import INSTRUMENT_OPERATIONS, INSTRUMENT_SCHEMAS
from services.api.query import NoParameters, query_model_of, query_parameters, with_query
from services.api.routes.deps import EXTENSION_KEY
from services.api.schedules_openapi import SCHEDULE_OPERATIONS, SCHEDULE_SCHEMAS, SCHEDULE_TAG
from services.core.models import INDICATOR_COLUMNS
from services.core.pipeline.runs import KINDS, RUN_KINDS, RUN_STATES

__all__ = ["openapi_document", "openapi_routes"]

openapi_routes = Blueprint("openapi", __name__)

_DOCUMENT_KEY = "candleflow.openapi"
_UNDOCUMENTED_METHODS = frozenset({"HEAD", "OPTIONS"})  # Flask adds them to every rule
_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # Flask's <converter:name> → OpenAPI's {name}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _rows(description: str, schema: dict) -> dict:
    """A read route's 200: JSON by default, CSV with format=csv."""
    csv = {"schema": {"type": "string", "description": "format=csv: a header row, then one row per item; "
                                                       "ISO 8601 UTC instants, empty cells for null"}}
    return {"description": description, "content": {**_json("", schema)["content"], CSV_MEDIA_TYPE: csv}}


def _list_of(key: str, item: str) -> dict:
    return {"type": "object", "required": ["count", key],
            "properties": {"count": {"type": "integer"}, key: {"type": "array", "items": _ref(item)}}}


_STRING = {"type": "string"}
_TIMESTAMP = {"type": "string", "format": "date-time", "nullable": True}
_NUMBER = {"type": "number", "nullable": True}
_SERIES = {"exchange": _STRING, "symbol": _STRING, "timeframe": _STRING, "count": {"type": "integer"}}
_SERIES_REQUIRED = ["exchange", "symbol", "timeframe", "count"]

_BAD_REQUEST = _json("A parameter is missing, unknown, repeated or malformed; `parameter` names it.", _ref("Error"))
_UNAUTHORIZED = {**_json("Missing or wrong bearer token.", _ref("Error")),
                 "headers": {"WWW-Authenticate": {"schema": _STRING}}}
_UNAVAILABLE = _json("Redis or Postgres is unavailable.", _ref("Error"))
_UNKNOWN_INSTRUMENT = _json("No such instrument on the exchange; `parameter` is symbol.", _ref("Error"))

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
            "scope": {"type": "object", "description": "exchange, symbol, timeframe, since, until (strings); days, "
                                                       "hours, bars (integers)"},
            "duplicate": {"type": "boolean", "description": "true: an identical run was already running"},
            "priority": {"type": "integer", "minimum": 0, "maximum": 9, "description": "9 most urgent"},
            "scheduled_for": {"type": "string", "format": "date-time",
                              "description": "A delayed run (countdown or eta): SCHEDULED until then"},
        },
    },
    "StageResult": {
        "type": "object", "required": ["instrument", "stage", "status"],
        "description": "One stage of one instrument; stages add their own counts (candles, signals, ...).",
        "properties": {"instrument": {"type": "string", "example": "BTC/USD 1h"}, "stage": _STRING,
                       "status": {"type": "string", "enum": ["ok", "failed", "skipped", "cancelled"]},
                       "seconds": {"type": "number"}, "error": _STRING, "reason": _STRING},
        "additionalProperties": True,
    },
    "RunStatus": {
        "type": "object", "required": ["task_id", "status", "ready", "successful", "result", "error"],
        "properties": {
            "task_id": _STRING,
            "task_type": {"type": "string", "enum": list(RUN_KINDS),
                          "description": "A pipeline run's kind, or import (POST /api/imports, candleflow import)"},
            "scope": {"type": "object"}, "status": {"type": "string", "enum": list(RUN_STATES)},
            "ready": {"type": "boolean",
                      "description": "The run has finished (SUCCESS, PARTIAL, FAILURE or CANCELLED)"},
            "successful": {"type": "boolean"},
            "result": {"type": "array", "items": _ref("StageResult")},
            "error": {"type": "string", "nullable": True, "description": "Failures named by instrument and stage"},
            "errors": {"type": "array", "items": {"type": "object"}},
            "created_at": _TIMESTAMP, "started_at": _TIMESTAMP, "finished_at": _TIMESTAMP,
            "priority": {"type": "integer", "minimum": 0, "maximum": 9}, "scheduled_for": _TIMESTAMP,
            "resumes": {"type": "integer", "minimum": 0,
                        "description": "Times pipeline.find_lost resumed the run from its records (RUN_RESUME_LIMIT)"},
            "resumed_at": _TIMESTAMP,
            "completed": {"type": "array", "items": _STRING,
                          "description": "CANCELLED only: instruments whose every stage ended ok"},
            "not_completed": {"type": "array", "items": _STRING, "description": "CANCELLED only: the others"},
            "cancelled_by": {"type": "string", "description": "CANCELLED only: api-token or cli"},
            "cancelled_at": _TIMESTAMP,
        },
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
    "IndicatorBar": {
        "type": "object", "description": "ts, the selected columns (all by default), is_closed.",
        "properties": {"ts": {"type": "string", "format": "date-time"},
                       **dict.fromkeys(INDICATOR_COLUMNS, _NUMBER),
                       "regime": {"type": "string", "nullable": True, "description": "The bar's market regime"},
                       "is_closed": {"type": "boolean", "description": "false: computed on the still-open bar"}},
    },
    "IndicatorList": {
        "type": "object", "required": [*_SERIES_REQUIRED, "columns", "indicators"],
        "properties": {**_SERIES, "columns": {"type": "array", "items": _STRING},
                       "indicators": {"type": "array", "items": _ref("IndicatorBar")}},
    },
    "Pattern": {
        "type": "object",
        "properties": {"ts": {"type": "string", "format": "date-time", "description": "The bar completing it"},
                       "pattern": _STRING, "direction": {"type": "string", "example": "bullish"},
                       "strength": _NUMBER, "detected_at": _TIMESTAMP},
    },
    "PatternList": {
        "type": "object", "required": [*_SERIES_REQUIRED, "patterns"],
        "properties": {**_SERIES, "patterns": {"type": "array", "items": _ref("Pattern")}},
    },
    "Level": {
        "type": "object",
        "properties": {"kind": {"type": "string", "example": "support"}, "price": _NUMBER,
                       "touches": {"type": "integer"}, "strength": _NUMBER,
                       "first_ts": _TIMESTAMP, "last_ts": _TIMESTAMP, "computed_at": _TIMESTAMP},
    },
    "LevelList": {
        "type": "object", "required": [*_SERIES_REQUIRED, "levels"],
        "properties": {**_SERIES, "levels": {"type": "array", "items": _ref("Level")}},
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
                       "priority": {"type": "integer", "minimum": 0, "maximum": 9}, "scheduled_for": _TIMESTAMP,
                       "created_at": _TIMESTAMP, "started_at": _TIMESTAMP, "finished_at": _TIMESTAMP,
                       "cancelled_by": {"type": "string", "nullable": True}, "cancelled_at": _TIMESTAMP,
                       "resumes": {"type": "integer", "minimum": 0}},
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
    **SCHEDULE_SCHEMAS,
    **INSTRUMENT_SCHEMAS,
    **IMPORT_SCHEMAS,
}

# Per endpoint (blueprint.view): what the url_map cannot say. 400 and 401 are added from the view itself.
_OPERATIONS: dict[str, dict] = {
    "trigger.start_manual_update": {
        "summary": "Start a pipeline run", "operationId": "startManualUpdate", "tags": ["runs"],
        "responses": {
            "202": {**_json("Queued, or SCHEDULED (countdown, eta); poll the Location header.", _ref("RunQueued")),
                    "headers": {"Location": {"schema": _STRING}}},
            "200": _json("The same kind and scope is already running: its id, duplicate=true.", _ref("RunQueued")),
            "503": _UNAVAILABLE,
        },
    },
    "trigger.manual_update_status": {
        "summary": "A run's status", "operationId": "getManualUpdateStatus", "tags": ["runs"],
        "responses": {"200": _json("The run's state and per-instrument stage results.", _ref("RunStatus")),
                      "404": _json("No run with this id.", _ref("Error")), "503": _UNAVAILABLE},
    },
    "read.list_candles": {
        "summary": "Candles of one symbol and timeframe", "operationId": "listCandles", "tags": ["data"],
        "description": "The newest `limit` candles in [since, until), returned oldest first.",
        "responses": {"200": _rows("Candles, oldest first.", _ref("CandleList")),
                      "404": _UNKNOWN_INSTRUMENT, "503": _UNAVAILABLE},
    },
    "read.list_signals": {
        "summary": "Signals", "operationId": "listSignals", "tags": ["data"],
        "responses": {"200": _rows("Signals, newest first.", _list_of("signals", "Signal")), "503": _UNAVAILABLE},
    },
    "analysis.list_indicators": {
        "summary": "Indicator values of one symbol and timeframe", "operationId": "listIndicators",
        "tags": ["data"],
        "description": "The newest `limit` bars in [since, until), returned oldest first; `columns` picks "
                       "the indicator columns.",
        "responses": {"200": _rows("Indicator values, oldest first.", _ref("IndicatorList")),
                      "404": _UNKNOWN_INSTRUMENT, "503": _UNAVAILABLE},
    },
    "analysis.list_patterns": {
        "summary": "Candlestick patterns of one symbol and timeframe", "operationId": "listPatterns",
        "tags": ["data"],
        "description": "The newest `limit` patterns completed in [since, until), returned oldest first.",
        "responses": {"200": _rows("Patterns, oldest first.", _ref("PatternList")),
                      "404": _UNKNOWN_INSTRUMENT, "503": _UNAVAILABLE},
    },
    "analysis.list_levels": {
        "summary": "Support and resistance levels of one symbol and timeframe", "operationId": "listLevels",
        "tags": ["data"],
        "description": "The current levels last touched in [since, until); the `limit` strongest, strongest first.",
        "responses": {"200": _rows("Levels, strongest first.", _ref("LevelList")),
                      "404": _UNKNOWN_INSTRUMENT, "503": _UNAVAILABLE},
    },
    "read.list_runs": {
        "summary": "Pipeline runs", "operationId": "listRuns", "tags": ["runs"],
        "description": "Runs newest first, by state, kind, symbol and creation time. Delayed runs are listed "
                       "from the moment they are SCHEDULED; runs queued to start now appear once started.",
        "responses": {"200": _json("Runs, newest first.", _list_of("runs", "Run")), "503": _UNAVAILABLE},
    },
    "runs.show_run": {
        "summary": "One run", "operationId": "getRun", "tags": ["runs"],
        "responses": {"200": _json("The run's state and per-instrument stage results.", _ref("RunStatus")),
                      "400": _json("A malformed run id.", _ref("Error")),
                      "404": _json("No run with this id.", _ref("Error")), "503": _UNAVAILABLE},
    },
    "runs.cancel": {
        "summary": "Cancel a run", "operationId": "cancelRun", "tags": ["runs"],
        "description": "Revokes the run's queued tasks, terminates running ones, frees its de-duplication lock; "
                       "the run ends CANCELLED with the instruments that completed and those that did not.",
        "responses": {"200": _json("Cancelled: the run's status.", _ref("RunStatus")),
                      "400": _json("A malformed run id.", _ref("Error")),
                      "404": _json("No run with this id.", _ref("Error")),
                      "409": _json("The run already finished; `state` says how.",
                                   {"allOf": [_ref("Error"), {"type": "object",
                                                              "properties": {"state": _STRING}}]}),
                      "503": _UNAVAILABLE},
    },
    "health.readiness": {
        "summary": "Readiness: Redis, Postgres and a worker per queue", "operationId": "getHealth", "tags": ["health"],
        "responses": {"200": _json("Everything is there.", _ref("Health")),
                      "503": _json("Something is missing; the message names it.", _ref("HealthFailure"))},
    },
    "health.liveness": {
        "summary": "Liveness: the process serves requests", "operationId": "getLiveness", "tags": ["health"],
        "responses": {"200": _json("Alive.", {"type": "object", "properties": {"status": _STRING}})},
    },
    "openapi.serve_openapi": {
        "summary": "This document", "operationId": "getOpenApi", "tags": ["meta"],
        "responses": {"200": _json("OpenAPI 3.0 document.", {"type": "object"})},
    },
    "metrics.expose_metrics": {
        "summary": "Prometheus metrics of the API", "operationId": "getMetrics", "tags": ["meta"],
        "responses": {"200": {"description": "Prometheus text exposition.",
                              "content": {"text/plain": {"schema": _STRING}}}},
    },
    **SCHEDULE_OPERATIONS,
    **INSTRUMENT_OPERATIONS,
    **IMPORT_OPERATIONS,
}


def _path_parameters(arguments: list[str]) -> list[dict]:
    """The rule's path arguments, each a required string (the views check them and answer 404 or 400)."""
    return [{"name": name, "in": "path", "required": True, "schema": _STRING} for name in arguments]


def _operation(endpoint: str, view: Callable, arguments: list[str], reads_need_token: bool) -> dict:
    """One operation: the entry above, plus what the route and view declare (parameters, token)."""
    if endpoint not in _OPERATIONS:
        raise LookupError(f"route {endpoint!r} has no entry in services/api/openapi.py _OPERATIONS")
    operation = {key: value for key, value in _OPERATIONS[endpoint].items() if key != "responses"}
    responses = dict(_OPERATIONS[endpoint]["responses"])
    parameters = _path_parameters(arguments)
    model = query_model_of(view)
    if model is not None:
        parameters += query_parameters(model)
        # Every model refuses unknown and repeated parameters; a route with a body says more itself.
        responses.setdefault("400", _BAD_REQUEST)
    if parameters:
        operation["parameters"] = parameters
    if is_guarded(endpoint, view, reads_need_token):
        operation["security"] = [{"bearerAuth": []}]
        responses["401"] = _UNAUTHORIZED
    return {**operation, "responses": responses}


def _paths(app: Flask) -> dict[str, dict]:
    reads_need_token = app.extensions[EXTENSION_KEY].settings.reads_need_token
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        arguments = _RULE_ARGUMENT.findall(rule.rule)  # in path order, unlike rule.arguments (a set)
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - _UNDOCUMENTED_METHODS):
            paths.setdefault(path, {})[method.lower()] = _operation(rule.endpoint, view, arguments, reads_need_token)
    return paths


def openapi_document(app: Flask) -> dict:
    """The document for `app`, built once from its url_map (complete once create_app returns)."""
    if _DOCUMENT_KEY not in app.extensions:
        app.extensions[_DOCUMENT_KEY] = {
            "openapi": "3.0.3",
            "info": {
                "title": "candleflow API",
                "version": "1.0.0",
                "description": "Trigger pipeline runs, poll their status, and read candles, indicator values, "
                               "patterns, levels, signals and runs (the data as JSON or CSV). "
                               "Errors are JSON: {\"status\": \"error\", \"message\": ..., \"parameter\": ...}.",
            },
            "tags": [{"name": "runs"}, {"name": "data"}, {"name": "health"}, {"name": "meta"}, SCHEDULE_TAG],
            "paths": _paths(app),
            "components": {
                "schemas": _SCHEMAS,
                "securitySchemes": {"bearerAuth": {
                    "type": "http", "scheme": "bearer",
                    "description": "API_TOKEN; for reads, when API_READ_ACCESS=token, API_READ_TOKEN too"}},
            },
        }
    return app.extensions[_DOCUMENT_KEY]


@openapi_routes.get("/api/openapi.json")
@with_query(NoParameters)
def serve_openapi(query: NoParameters) -> Response:
    """The OpenAPI document of this app."""
    return jsonify(openapi_document(current_app))
