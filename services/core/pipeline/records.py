"""The tables a run keeps in Postgres: `pipeline_runs` (one row a run) and `pipeline_stage_results` (progress)."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

__all__ = ["insert_run", "record_stages", "finish_run_row", "fail_run_row", "fail_lost_runs", "delete_runs_before",

# bandit B608 (marked nosec below): only the _RUN_COLUMNS constant is interpolated; ids are bound.
           "read_run", "read_stage_progress"]

_RUN_COLUMNS = "id, kind, scope, state, stages, errors, created_at, started_at, finished_at"


def insert_run(conn: Connection, run_id: str, kind: str, scope: dict) -> None:
    """The run's row, STARTED; a redelivered start leaves the existing row alone."""
    conn.execute(text("""
        INSERT INTO pipeline_runs (id, kind, scope, state, started_at)
        VALUES (:id, :kind, CAST(:scope AS jsonb), 'STARTED', now())
        ON CONFLICT (id) DO NOTHING"""), {"id": run_id, "kind": kind, "scope": json.dumps(scope)})


def record_stages(conn: Connection, run_id: str, entries: list[tuple[str, dict]]) -> None:
    """Stage outcomes (instrument label, entry) as a batch settles them.

    Rows, not one shared JSON document, so a thousand instruments never queue on one row lock.
    """
    if not entries:
        return
    conn.execute(text("""
        INSERT INTO pipeline_stage_results (run_id, instrument, stage, result)
        VALUES (:id, :instrument, :stage, CAST(:entry AS jsonb))
        ON CONFLICT (run_id, instrument, stage) DO UPDATE SET result = EXCLUDED.result, recorded_at = now()"""),
        [{"id": run_id, "instrument": label, "stage": entry["stage"], "entry": json.dumps(entry)}
         for label, entry in entries])


def finish_run_row(conn: Connection, run_id: str, state: str, stages: dict, errors: list[dict]) -> None:
    """Fold the progress rows into the run's row: final state, per-instrument stages, errors."""
    conn.execute(text("""
        UPDATE pipeline_runs SET state = :state, stages = CAST(:stages AS jsonb),
               errors = CAST(:errors AS jsonb), finished_at = now()
         WHERE id = :id"""), {"id": run_id, "state": state, "stages": json.dumps(stages),
                              "errors": json.dumps(errors)})
    # The progress rows have served their purpose once the summary is written.
    conn.execute(text("DELETE FROM pipeline_stage_results WHERE run_id = :id"), {"id": run_id})


def fail_run_row(conn: Connection, run_id: str, errors: list[dict]) -> None:
    """FAILURE with these errors, unless the run already finished."""
    conn.execute(text("""
        UPDATE pipeline_runs SET state = 'FAILURE', errors = CAST(:errors AS jsonb), finished_at = now()
         WHERE id = :id AND finished_at IS NULL"""), {"id": run_id, "errors": json.dumps(errors)})


def fail_lost_runs(conn: Connection, older_than_s: float, error: dict) -> list[tuple[str, str, dict]]:
    """Fail runs started more than `older_than_s` seconds ago and never finished; their (id, kind, scope)."""
    rows = conn.execute(text("""
        UPDATE pipeline_runs
           SET state = 'FAILURE', finished_at = now(), errors = errors || CAST(:error AS jsonb)
         WHERE finished_at IS NULL AND started_at < now() - make_interval(secs => :s)
     RETURNING id, kind, scope"""), {"s": older_than_s, "error": json.dumps([error])}).all()
    return [tuple(row) for row in rows]


def delete_runs_before(conn: Connection, days: int) -> int:
    """Drop runs finished more than `days` days ago; how many."""
    return conn.execute(text(
        "DELETE FROM pipeline_runs WHERE finished_at < now() - make_interval(days => :d)"), {"d": days}).rowcount


def read_run(conn: Connection, run_id: str) -> dict | None:
    """The run's row as a mapping, or None."""
    row = conn.execute(text(f"SELECT {_RUN_COLUMNS} FROM pipeline_runs WHERE id = :id"),  # nosec B608
                       {"id": run_id}).mappings().first()
    return None if row is None else dict(row)


def read_stage_progress(conn: Connection, run_id: str) -> dict[str, list[dict]]:
    """instrument → its stage results so far, in the order they finished."""
    stages: dict[str, list[dict]] = {}
    for instrument, result in conn.execute(text(
            "SELECT instrument, result FROM pipeline_stage_results WHERE run_id = :id ORDER BY recorded_at"),
            {"id": run_id}):
        stages.setdefault(instrument, []).append(result)
    return stages
