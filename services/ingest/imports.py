"""The ingest task of API imports: the file the API staged in Postgres, read, checked and stored as its run."""

from __future__ import annotations

import logging
import time

from services.core.celery_app import app
from services.core.db import get_engine
from services.core.imports import ImportOptions
from services.core.pipeline.stages import RETRY_POLICY, TRANSIENT_ERRORS
from services.core.store.uploads import delete_upload, read_upload

__all__ = ["ImportTask", "import_upload"]

log = logging.getLogger(__name__)


class ImportTask(app.Task):
    """An import that fails for good (retries spent, a bug, a soft time limit) ends its run FAILURE and drops
    its upload: never PENDING for a week holding up to IMPORT_MAX_BYTES in Postgres."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        from services.core.pipeline.failures import describe_failure
        from services.ingest.files.importing import record_refusal

        run_id = args[0] if args else kwargs.get("run_id")
        engine = get_engine()
        with engine.begin() as conn:
            upload = read_upload(conn, run_id)
            if upload is None:
                return
            record_refusal(conn, run_id, upload["filename"], ImportOptions(**upload["options"]),
                           describe_failure(exc), reason="failed")
            delete_upload(conn, run_id)
        log.error("import %s of %s failed: %s", run_id, upload["filename"], exc)


@app.task(name="ingest.import_file", base=ImportTask, autoretry_for=TRANSIENT_ERRORS, **RETRY_POLICY)
def import_upload(run_id: str) -> dict:
    """Import the upload of run `run_id`; a refused file ends the run FAILURE with the reason, nothing stored.

    Idempotent: the upload goes in the transaction that records the outcome, so a redelivery
    finds nothing left to do.
    """
    # Deferred: pandas and pyarrow (about 60 MB) load in the pool child that first imports a file,
    # not in every ingest worker at start (tests/unit/core/test_worker_imports.py).
    from services.ingest.files.importing import record_import, record_refusal
    from services.ingest.files.reading import parse_file

    engine = get_engine()
    with engine.connect() as conn:
        upload = read_upload(conn, run_id)
    if upload is None:
        return {"run_id": run_id, "status": "done before"}
    options = ImportOptions(**upload["options"])
    now_ms = int(time.time() * 1000)
    try:
        parsed = parse_file(upload["content"], upload["filename"], options, now_ms)
        with engine.begin() as conn:
            reports = record_import(conn, run_id, parsed, options, now_ms) or []
            delete_upload(conn, run_id)
    except ValueError as exc:  # ImportRefused, an unknown venue, a bad option: the file as a whole
        log.info("import %s of %s refused: %s", run_id, upload["filename"], exc)
        with engine.begin() as conn:
            record_refusal(conn, run_id, upload["filename"], options, exc)
            delete_upload(conn, run_id)
        return {"run_id": run_id, "status": "refused", "error": str(exc)}
    log.info("import %s of %s: %s", run_id, upload["filename"],
             ", ".join(f"{r.symbol} {r.stored} stored, {sum(r.rejected.values())} rejected" for r in reports))
    return {"run_id": run_id, "status": "imported", "instruments": [{"symbol": r.symbol, **r.entry()}
                                                                    for r in reports]}
