"""POST /api/imports: a CSV or Parquet candle file uploaded, staged in Postgres, imported by the ingest worker."""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import PurePosixPath, PureWindowsPath

from flask import Blueprint, Response, jsonify, request

from services.api.auth import require_token
from services.api.edge import allow_body
from services.api.errors import ApiError
from services.api.query import NoParameters, with_query
from services.api.routes.deps import deps
from services.core import keys
from services.core.file_head import head_columns
from services.core.file_layout import check_symbol_source, recognise_layout
from services.core.imports import RUN_KIND, ImportOptions, ImportRefused, parse_column_mapping
from services.core.store.instruments import read_instrument
from services.core.store.uploads import delete_upload, stage_upload
from services.core.timeframe import Timeframe
from services.core.venues import check_symbol, venue

__all__ = ["import_routes", "FORM_FIELDS", "IMPORT_TASK"]

log = logging.getLogger(__name__)

import_routes = Blueprint("imports", __name__)

IMPORT_TASK = "ingest.import_file"
# The multipart form's text fields (the file comes as `file`); any other is refused, never ignored.
FORM_FIELDS = ("exchange", "timeframe", "symbol", "columns", "date_format")
_REQUIRED = ("exchange", "timeframe")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _field(name: str) -> str | None:
    values = request.form.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"{name} given {len(values)} times; give it once", name)
    value = values[0].strip() if values else None
    if value is not None and (not value or len(value) > 255 or _CONTROL_RE.search(value)):
        raise ApiError(400, f"{name} must be 1 to 255 printable characters", name)
    if value is None and name in _REQUIRED:
        raise ApiError(400, f"the form needs {name}, e.g. {'XNYS' if name == 'exchange' else '1d'}", name)
    return value


def _checked(check, parameter: str, *args):
    try:
        return check(*args)
    except ValueError as exc:
        raise ApiError(400, str(exc), parameter) from None


def _options() -> ImportOptions:
    """The form as import options; a 400 naming the first bad field."""
    unknown = sorted(set(request.form) - set(FORM_FIELDS))
    if unknown:
        raise ApiError(400, f"unknown form field {unknown[0][:40]!r}; fields: file, {', '.join(FORM_FIELDS)}",
                       unknown[0][:40])
    given = {name: _field(name) for name in FORM_FIELDS}
    _checked(venue, "exchange", given["exchange"])
    _checked(Timeframe.parse, "timeframe", given["timeframe"])
    if given["symbol"] is not None:
        _checked(check_symbol, "symbol", given["exchange"], given["symbol"])
    columns = _checked(parse_column_mapping, "columns", given["columns"]) if given["columns"] else {}
    options = ImportOptions(given["exchange"], given["timeframe"], given["symbol"], columns, given["date_format"])
    return _checked(options.checked, "date_format")


def _upload() -> tuple[str, bytes]:
    files = request.files.getlist("file")
    if len(files) != 1:
        raise ApiError(400, "send exactly one file as the multipart field 'file'", "file")
    upload = files[0]
    # The name is a label (the run's scope, rejected rows' source_file): its last path part, printable.
    name = _CONTROL_RE.sub("", PureWindowsPath(PurePosixPath(upload.filename or "").name).name)[:255] or "upload"
    content = upload.read()
    if not content:
        raise ApiError(400, f"{name} is empty", "file")
    return name, content


def _check_head(content: bytes, filename: str, options: ImportOptions) -> None:
    """A 400 for what the file's first bytes already show (not CSV or Parquet, empty, no known layout, the
    symbol given twice or not at all); the rest (dates, spacing, rows) the worker checks and reports."""
    try:
        layout = recognise_layout(head_columns(content, filename), options.columns)
        check_symbol_source(layout, options.symbol, filename)
    except ImportRefused as exc:
        raise ApiError(400, str(exc), "file") from None


@import_routes.post("/api/imports")
@allow_body(lambda: deps().settings.import_max_bytes)  # an upload, not a request: IMPORT_MAX_BYTES (413 beyond)
@require_token
@with_query(NoParameters)
def start_import(query: NoParameters) -> tuple[Response, int]:
    """Stage an uploaded candle file for the ingest worker; 202 with the run id to follow at GET /api/runs/<id>."""
    if not request.content_type or not request.content_type.startswith("multipart/form-data"):
        raise ApiError(400, "send the file as multipart/form-data (curl -F file=@bars.csv ...)", "body")
    options = _options()
    filename, content = _upload()
    _check_head(content, filename, options)
    run_id = str(uuid.uuid4())
    scope = options.scope(filename)
    with deps().engine.begin() as conn:
        row = read_instrument(conn, options.exchange, options.symbol) if options.symbol else None
        if row is not None and options.timeframe not in row["timeframes"]:
            raise ApiError(400, f"{options.symbol} on {options.exchange} is kept in {','.join(row['timeframes'])}, "
                                f"not {options.timeframe}", "timeframe")
        stage_upload(conn, run_id, filename, content, options.as_dict())
    client = deps().redis
    try:  # PENDING until the worker starts it, as any queued run
        client.set(keys.run_record(run_id), json.dumps({"kind": RUN_KIND, "scope": scope}),
                   ex=keys.RUN_RECORD_TTL_S)
        deps().celery.send_task(IMPORT_TASK, args=[run_id], task_id=run_id)
    except Exception:
        client.delete(keys.run_record(run_id))
        with deps().engine.begin() as conn:  # not queued: the staged file would wait forever
            delete_upload(conn, run_id)
        raise
    log.info("import %s of %s (%d bytes) queued: %s", run_id, filename, len(content), scope)
    return jsonify({"status": "success", "message": f"import of {filename} queued; follow it at /api/runs/{run_id}",
                    "task_id": run_id, "task_type": RUN_KIND, "scope": scope, "bytes": len(content)}), 202
