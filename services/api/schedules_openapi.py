"""The OpenAPI entries of the schedule routes: their summaries, bodies and responses, merged into openapi.py's."""

from __future__ import annotations

from services.core.pipeline.jobs import MAINTENANCE_TASKS, MAX_EVERY_S, MAX_TRADING_S, MIN_EVERY_S, SOURCES
from services.core.pipeline.runs import KINDS
from services.core.pipeline.scopes import RELATIVE_LIMITS
from services.core.store.schedule_changes import ACTIONS

__all__ = ["SCHEDULE_OPERATIONS", "SCHEDULE_SCHEMAS", "SCHEDULE_TAG"]

SCHEDULE_TAG = {"name": "schedules", "description": "The live schedule beat runs; changes apply at its next tick"}

_STRING = {"type": "string"}
_TIMESTAMP = {"type": "string", "format": "date-time", "nullable": True}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(description: str, schema: dict) -> dict:
    return {"required": True, **_json(description, schema)}


_ERROR = _ref("Error")
_NOT_FOUND = _json("No job of this name.", _ERROR)
_BAD_BODY = _json("The body is not JSON, or a field is unknown, of the wrong type or invalid; `parameter` names it "
                  "(`scope.symbol` for a scope field).", _ERROR)
_UNAVAILABLE = _json("Redis or Postgres is unavailable.", _ERROR)

# The fields an operator sets; a read adds SCHEDULE_READ's.
_FIELDS = {
    "scope": {"type": "object", "description": "The run's scope: the trigger's symbol and timeframe (comma lists), "
                                               "since, until, or days, hours or bars (resolved as each run starts)",
              "properties": {"symbol": _STRING, "timeframe": _STRING, "since": _STRING, "until": _STRING,
                             **{name: {"type": "integer", "minimum": 1, "maximum": limit}
                                for name, limit in RELATIVE_LIMITS.items()}},
              "additionalProperties": False},
    "cron": {"type": "string", "description": "minute hour day month weekday, in `timezone`", "example": "5 * * * *"},
    "every": {"type": "integer", "minimum": MIN_EVERY_S, "maximum": MAX_EVERY_S,
              "description": "Interval in seconds (instead of cron)"},
    "trading": {"type": "object", "required": ["exchange"], "additionalProperties": False,
                "description": "While a stock venue trades (instead of cron and every), on its calendar: holidays "
                               "fire nothing, half days stop at their early close. Give every or after_close.",
                "properties": {
                    "exchange": {"type": "string", "description": "A MIC with a trading calendar", "example": "XTAI"},
                    "every": {"type": "integer", "minimum": MIN_EVERY_S, "maximum": MAX_TRADING_S,
                              "description": "Seconds between runs while open: the open, every N s, the close"},
                    "after_close": {"type": "integer", "minimum": 0, "maximum": MAX_TRADING_S,
                                    "description": "Seconds after each session's close, trading days only"}},
                "example": {"exchange": "XTAI", "every": 900}},
    "timezone": {"type": "string", "description": "IANA zone the cron is read in; default TIMEZONE (a trading job: "
                                                  "its venue's zone, which is the only one it takes)",
                 "example": "UTC"},
    "enabled": {"type": "boolean", "default": True},
    "priority": {"type": "integer", "minimum": 0, "maximum": 9, "default": 5, "description": "9 most urgent"},
}

_SPEC = {
    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$", "example": "btc-hourly"},
    "task": {"type": "string", "enum": [*KINDS, *MAINTENANCE_TASKS],
             "description": "A run kind (as the trigger's task=) or a maintenance task (no scope)"},
    **_FIELDS,
}

SCHEDULE_SCHEMAS = {
    "ScheduleJobSpec": {
        "type": "object", "required": ["name", "task"], "additionalProperties": False,
        "description": "Give exactly one of cron, every and trading.", "properties": _SPEC,
    },
    "ScheduleJobChange": {
        "type": "object", "additionalProperties": False,
        "description": "Fields to change; one of cron, every and trading replaces the others. name and task "
                       "cannot change.",
        "properties": _FIELDS,
    },
    "ScheduleJob": {
        "type": "object", "required": ["name", "task", "scope", "timezone", "enabled", "priority", "source"],
        "properties": {**_SPEC,
                       "next_run_at": {**_TIMESTAMP, "description": "null while disabled"},
                       "last_run_at": _TIMESTAMP, "last_run_id": {"type": "string", "nullable": True},
                       "source": {"type": "string", "enum": list(SOURCES)},
                       "deleted": {"type": "boolean", "description": "In DELETE's answer only"}},
    },
    "ScheduleJobList": {
        "type": "object", "required": ["count", "jobs"],
        "properties": {"count": {"type": "integer"}, "jobs": {"type": "array", "items": _ref("ScheduleJob")}},
    },
    "ScheduleRunStarted": {
        "type": "object", "required": ["status", "task_id", "duplicate", "job"],
        "properties": {"status": {"type": "string", "enum": ["success"]},
                       "task_id": {"type": "string", "description": "The run id (a run job: poll it at "
                                                                    "GET /api/manual-update/)"},
                       "duplicate": {"type": "boolean"}, "job": _ref("ScheduleJob")},
    },
    "ScheduleChange": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "job": _STRING, "changed_at": _TIMESTAMP,
                       "actor": {"type": "string", "description": "api-token (the API_TOKEN) or cli"},
                       "action": {"type": "string", "enum": list(ACTIONS)},
                       "before": {"type": "object", "nullable": True}, "after": {"type": "object", "nullable": True}},
    },
    "ScheduleHistory": {
        "type": "object", "required": ["count", "changes"],
        "properties": {"count": {"type": "integer"},
                       "changes": {"type": "array", "items": _ref("ScheduleChange")}},
    },
}

_JOB = _json("The job as it now stands.", _ref("ScheduleJob"))

SCHEDULE_OPERATIONS: dict[str, dict] = {
    "schedules.list_schedules": {
        "summary": "Every schedule job", "operationId": "listSchedules", "tags": ["schedules"],
        "responses": {"200": _json("The jobs, by name.", _ref("ScheduleJobList")), "503": _UNAVAILABLE},
    },
    "schedules.show_schedule": {
        "summary": "One schedule job", "operationId": "getSchedule", "tags": ["schedules"],
        "responses": {"200": _json("The job.", _ref("ScheduleJob")), "404": _NOT_FOUND, "503": _UNAVAILABLE},
    },
    "schedules.add_schedule": {
        "summary": "Add a schedule job", "operationId": "addSchedule", "tags": ["schedules"],
        "requestBody": _body("The job.", _ref("ScheduleJobSpec")),
        "responses": {"201": _json("Added; it first runs at its next time from now.", _ref("ScheduleJob")),
                      "400": _BAD_BODY, "409": _json("A job of this name exists.", _ERROR), "503": _UNAVAILABLE},
    },
    "schedules.change_schedule": {
        "summary": "Change a schedule job", "operationId": "changeSchedule", "tags": ["schedules"],
        "requestBody": _body("The fields to change.", _ref("ScheduleJobChange")),
        "responses": {"200": _JOB, "400": _BAD_BODY, "404": _NOT_FOUND, "503": _UNAVAILABLE},
    },
    "schedules.delete_schedule": {
        "summary": "Delete a schedule job", "operationId": "deleteSchedule", "tags": ["schedules"],
        "responses": {"200": _json("Deleted; the job as it was, with deleted=true.", _ref("ScheduleJob")),
                      "404": _NOT_FOUND, "503": _UNAVAILABLE},
    },
    "schedules.run_schedule": {
        "summary": "Run a schedule job now", "operationId": "runSchedule", "tags": ["schedules"],
        "responses": {"202": _json("Queued.", _ref("ScheduleRunStarted")),
                      "200": _json("The same run is already going: its id, duplicate=true.",
                                   _ref("ScheduleRunStarted")),
                      "404": _NOT_FOUND, "503": _UNAVAILABLE},
    },
    "schedules.reset_schedule": {
        "summary": "Reset a schedule job to its default", "operationId": "resetSchedule", "tags": ["schedules"],
        "responses": {"200": _JOB, "404": _NOT_FOUND,
                      "409": _json("The job has no default (an operator added it).", _ERROR), "503": _UNAVAILABLE},
    },
    "schedules.schedule_history": {
        "summary": "A schedule job's changes", "operationId": "getScheduleHistory", "tags": ["schedules"],
        "responses": {"200": _json("Changes, newest first.", _ref("ScheduleHistory")), "404": _NOT_FOUND,
                      "503": _UNAVAILABLE},
    },
}
