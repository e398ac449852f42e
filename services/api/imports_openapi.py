"""The OpenAPI entry of POST /api/imports (a multipart upload), merged into openapi.py's."""

from __future__ import annotations

from services.core.imports import FIELDS, RUN_KIND

__all__ = ["IMPORT_OPERATIONS", "IMPORT_SCHEMAS"]

_STRING = {"type": "string"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


IMPORT_SCHEMAS = {
    "ImportUpload": {
        "type": "object", "required": ["file", "exchange", "timeframe"], "additionalProperties": False,
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "CSV (optionally gzipped) or Parquet; at most IMPORT_MAX_BYTES"},
            "exchange": {"type": "string", "example": "XNYS", "description": "A MIC (XNYS, XSHG, XTAI, ...) or a "
                                                                             "ccxt exchange id"},
            "timeframe": {"type": "string", "example": "1d", "description": "The bars' length"},
            "symbol": {"type": "string", "example": "MSFT",
                       "description": "The instrument; leave it out when the file has a symbol column"},
            "columns": {"type": "string", "example": "date=Trade Date,close=Last",
                        "description": f"field=Column pairs over the recognised layout; fields: {', '.join(FIELDS)}"},
            "date_format": {"type": "string", "example": "%d.%m.%Y",
                            "description": "strptime format of the date column, over the recognised spellings"},
        },
    },
    "ImportQueued": {
        "type": "object", "required": ["status", "message", "task_id", "task_type", "scope", "bytes"],
        "properties": {"status": {"type": "string", "enum": ["success"]}, "message": _STRING,
                       "task_id": {"type": "string", "description": "The run id; follow it at GET /api/runs/{run_id}"},
                       "task_type": {"type": "string", "enum": [RUN_KIND]},
                       "scope": {"type": "object", "description": "exchange, timeframe, file, and symbol, columns, "
                                                                  "date_format when given"},
                       "bytes": {"type": "integer", "description": "The upload's size"}},
    },
}

IMPORT_OPERATIONS: dict[str, dict] = {
    "imports.start_import": {
        "summary": "Import a candle file", "operationId": "startImport", "tags": ["data"],
        "description": "The file is staged in Postgres and imported by the ingest worker as a run of kind "
                       "`import`. Its status (GET /api/runs/{run_id}) shows per instrument the rows read, stored, "
                       "unchanged and rejected by reason. What the file's first bytes show is refused with a "
                       "400 at once (not CSV or Parquet, empty, an unknown layout, the symbol in a column and "
                       "the form, or in neither); what only the whole file shows (no rows, dates not the "
                       "timeframe apart) ends the run FAILURE with the reason, nothing stored.",
        "requestBody": {"required": True,
                        "content": {"multipart/form-data": {"schema": _ref("ImportUpload")}}},
        "responses": {
            "202": _json("Staged and queued.", _ref("ImportQueued")),
            "400": _json("Not multipart, a field missing, unknown, repeated or invalid (an exchange neither ccxt "
                         "nor a known MIC, a malformed symbol or timeframe, a timeframe other than the "
                         "instrument's), or a file its first bytes refuse (not CSV or Parquet, empty, an "
                         "unknown layout, the symbol given twice or not at all: `parameter` is `file`); "
                         "`parameter` names it.", _ref("Error")),
            "413": _json("The upload is larger than IMPORT_MAX_BYTES.", _ref("Error")),
            "503": _json("Redis or Postgres is unavailable.", _ref("Error")),
        },
    },
}
