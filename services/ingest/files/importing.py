"""An import as a run: a `pipeline_runs` row of kind import whose stage entries are the per-instrument counts."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from services.core.imports import RUN_KIND, ImportOptions
from services.core.pipeline.records import finish_run_row, insert_run
from services.ingest.files.reading import ParsedFile
from services.ingest.files.storing import SeriesReport, store_file

__all__ = ["record_import", "record_refusal"]


def record_import(conn: Connection, run_id: str, parsed: ParsedFile, options: ImportOptions, now_ms: int,
                  progress: Callable[[int], None] | None = None) -> list[SeriesReport] | None:
    """Store the file and finish its run SUCCESS, on `conn`'s transaction; None if the run already finished."""
    if insert_run(conn, run_id, RUN_KIND, options.scope(parsed.name)) != "STARTED":
        return None  # a redelivered import whose first delivery finished (or was cancelled)
    reports = store_file(conn, parsed, options, now_ms, progress)
    finish_run_row(conn, run_id, "SUCCESS", {_label(r.symbol, r.timeframe): [r.entry()] for r in reports}, [])
    return reports


def record_refusal(conn: Connection, run_id: str, filename: str, options: ImportOptions, error: Exception | str,
                   reason: str = "refused") -> None:
    """Finish the run FAILURE with the refusal (or, with reason "failed", the crash) named; nothing else is
    written."""
    if insert_run(conn, run_id, RUN_KIND, options.scope(filename)) != "STARTED":
        return
    label = _label(options.symbol or "*", options.timeframe)
    finish_run_row(conn, run_id, "FAILURE",
                   {label: [{"stage": "import", "status": "failed", "reason": reason, "error": str(error)}]},
                   [{"instrument": label, "stage": "import", "error": str(error)}])


def _label(symbol: str, timeframe: str) -> str:
    return f"{symbol} {timeframe}"
