"""The tables a run keeps in Postgres: `pipeline_runs` (one row a run) and `pipeline_stage_results` (progress)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, text

__all__ = ["insert_run", "insert_scheduled_run", "record_stages", "finish_run_row", "fail_run_row", "fail_lost_runs",
           "fail_lost_run", "cancel_run_row", "run_state", "unfinished_runs", "delete_runs_before", "read_run",
           "read_runs", "read_stage_progress", "quiet_for_s", "append_batches", "claim_resume"]

# bandit B608 (marked nosec below): only the _RUN_COLUMNS constant and fixed WHERE fragments are
# interpolated; every value is a bound parameter.

_RUN_COLUMNS = ("id, kind, scope, state, stages, errors, created_at, started_at, finished_at, priority, scheduled_for, "
                "batches, cancelled_by, cancelled_at, resumes, resumed_at")


def insert_run(conn: Connection, run_id: str, kind: str, scope: dict, priority: int = 5,
               batches: list[list[str]] | None = None) -> str:
    """The run's row, STARTED (a SCHEDULED row moves to STARTED); the state the row now has.

    A redelivered start leaves a started, finished or cancelled row alone and gets its state back,
    so the caller can tell a run to start from one to leave be; one statement, so a concurrent
    cancel either comes first (CANCELLED is returned) or after (it sees STARTED).
    """
    started = conn.execute(text("""
        INSERT INTO pipeline_runs (id, kind, scope, state, started_at, priority, batches)
        VALUES (:id, :kind, CAST(:scope AS jsonb), 'STARTED', now(), :priority, CAST(:batches AS jsonb))
        ON CONFLICT (id) DO UPDATE SET state = 'STARTED', started_at = now(), batches = EXCLUDED.batches
         WHERE pipeline_runs.state = 'SCHEDULED'
     RETURNING state"""), {"id": run_id, "kind": kind, "scope": json.dumps(scope), "priority": priority,
                           "batches": json.dumps(batches or [])}).scalar()
    return started or run_state(conn, run_id)


def insert_scheduled_run(conn: Connection, run_id: str, kind: str, scope: dict, priority: int,
                         scheduled_for: datetime) -> None:
    """A delayed run's row, SCHEDULED until its start message is due."""
    conn.execute(text("""
        INSERT INTO pipeline_runs (id, kind, scope, state, priority, scheduled_for)
        VALUES (:id, :kind, CAST(:scope AS jsonb), 'SCHEDULED', :priority, :at)"""),
        {"id": run_id, "kind": kind, "scope": json.dumps(scope), "priority": priority, "at": scheduled_for})


def run_state(conn: Connection, run_id: str) -> str | None:
    """The run's state, or None when it has no row (queued, or never submitted)."""
    return conn.execute(text("SELECT state FROM pipeline_runs WHERE id = :id"), {"id": run_id}).scalar()


def cancel_run_row(conn: Connection, run_id: str, kind: str, scope: dict, priority: int, by: str) -> bool:
    """CANCELLED by `by`, now, unless the run already finished; a queued run without a row gets one.

    True when this call cancelled it. Progress rows stay: they say which instruments completed.
    """
    return conn.execute(text("""
        INSERT INTO pipeline_runs (id, kind, scope, state, priority, finished_at, cancelled_by, cancelled_at)
        VALUES (:id, :kind, CAST(:scope AS jsonb), 'CANCELLED', :priority, now(), :by, now())
        ON CONFLICT (id) DO UPDATE SET state = 'CANCELLED', finished_at = now(), cancelled_by = :by,
                                       cancelled_at = now()
         WHERE pipeline_runs.finished_at IS NULL
     RETURNING id"""), {"id": run_id, "kind": kind, "scope": json.dumps(scope), "priority": priority,
                        "by": by}).first() is not None


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


def finish_run_row(conn: Connection, run_id: str, state: str, stages: dict, errors: list[dict]) -> bool:
    """Fold the progress rows into the run's row: final state, per-instrument stages, errors.

    A run already finished (cancelled, or failed by an abort or the resume limit) keeps its state and its
    progress rows; False then.
    """
    finished = conn.execute(text("""
        UPDATE pipeline_runs SET state = :state, stages = CAST(:stages AS jsonb),
               errors = CAST(:errors AS jsonb), finished_at = now()
         WHERE id = :id AND finished_at IS NULL"""), {"id": run_id, "state": state, "stages": json.dumps(stages),
                                                       "errors": json.dumps(errors)}).rowcount
    if finished:  # the progress rows have served their purpose once the summary is written
        conn.execute(text("DELETE FROM pipeline_stage_results WHERE run_id = :id"), {"id": run_id})
    return bool(finished)


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


def fail_lost_run(conn: Connection, run_id: str, kind: str, scope: dict, error: dict) -> bool:
    """FAILURE with `error` unless the run finished meanwhile; a queued run without a row gets one. True if failed."""
    return conn.execute(text("""
        INSERT INTO pipeline_runs (id, kind, scope, state, errors, finished_at)
        VALUES (:id, :kind, CAST(:scope AS jsonb), 'FAILURE', CAST(:errors AS jsonb), now())
        ON CONFLICT (id) DO UPDATE SET state = 'FAILURE', finished_at = now(),
                                       errors = pipeline_runs.errors || EXCLUDED.errors
         WHERE pipeline_runs.finished_at IS NULL
     RETURNING id"""), {"id": run_id, "kind": kind, "scope": json.dumps(scope),
                        "errors": json.dumps([error])}).first() is not None


# A run's last sign of progress: created, started, or a stage recorded (over runs r ⟕ stage results p).
_LAST_PROGRESS = "greatest(r.created_at, r.started_at, max(p.recorded_at))"
_RUNS_WITH_RESULTS = "pipeline_runs r LEFT JOIN pipeline_stage_results p ON p.run_id = r.id"


def unfinished_runs(conn: Connection) -> list[dict]:
    """Every run not finished: id, kind, scope, state, scheduled_for, batches, `recorded` (how many stage
    results, the plan's refusals included) and `quiet_since`, its last sign of progress (created, started,
    or a stage recorded)."""
    rows = conn.execute(text(f"""
        SELECT r.id, r.kind, r.scope, r.state, r.scheduled_for, r.batches, count(p.run_id) AS recorded,
               {_LAST_PROGRESS} AS quiet_since
          FROM {_RUNS_WITH_RESULTS}
         WHERE r.finished_at IS NULL
         GROUP BY r.id""")).mappings().all()  # nosec B608
    return [dict(row) for row in rows]


def delete_runs_before(conn: Connection, days: int) -> int:
    """Drop runs finished more than `days` days ago; how many."""
    return conn.execute(text(
        "DELETE FROM pipeline_runs WHERE finished_at < now() - make_interval(days => :d)"), {"d": days}).rowcount


def read_run(conn: Connection, run_id: str) -> dict | None:
    """The run's row as a mapping, or None."""
    row = conn.execute(text(f"SELECT {_RUN_COLUMNS} FROM pipeline_runs WHERE id = :id"),  # nosec B608
                       {"id": run_id}).mappings().first()
    return None if row is None else dict(row)


def read_runs(conn: Connection, *, state: str | None = None, kind: str | None = None, symbol: str | None = None,
              exchange: tuple[str, str] | None = None, since: datetime | None = None, until: datetime | None = None,
              limit: int = 50) -> list[dict]:
    """Runs created in [since, until), newest first, narrowed by state, kind, symbol and exchange.

    A symbol matches a run scoped to it and a run whose batches covered it (e.g. `all`). `exchange`
    is (the exchange, the configured EXCHANGE): a scope names an exchange only when it is another.
    """
    filters = {"state": "state = :state", "kind": "kind = :kind",
               "exchange": "coalesce(scope->>'exchange', :default_exchange) = :exchange",
               "symbol": "(scope->>'symbol' = :symbol OR jsonb_path_exists(batches, '$[*][*] ? (@ starts with $s)', "
                         "jsonb_build_object('s', CAST(:symbol AS text) || ' ')))",
               "since": "created_at >= :since", "until": "created_at < :until"}
    given = {name: value for name, value in (("state", state), ("kind", kind), ("symbol", symbol), ("since", since),
                                             ("until", until)) if value is not None}
    if exchange is not None:
        given["exchange"], extra = exchange[0], {"default_exchange": exchange[1]}
    else:
        extra = {}
    where = " AND ".join(filters[name] for name in given) or "true"
    rows = conn.execute(text(f"SELECT {_RUN_COLUMNS} FROM pipeline_runs WHERE {where} "  # nosec B608
                             "ORDER BY created_at DESC, id LIMIT :limit"),
                        {**given, **extra, "limit": limit}).mappings().all()
    return [dict(row) for row in rows]


def read_stage_progress(conn: Connection, run_id: str) -> dict[str, list[dict]]:
    """instrument → its stage results so far, in the order they finished."""
    stages: dict[str, list[dict]] = {}
    for instrument, result in conn.execute(text(
            "SELECT instrument, result FROM pipeline_stage_results WHERE run_id = :id ORDER BY recorded_at"),
            {"id": run_id}):
        stages.setdefault(instrument, []).append(result)
    return stages


def quiet_for_s(conn: Connection, run_id: str) -> float:
    """Seconds since the run last showed progress (started, or a stage recorded), by the database's clock."""
    return conn.execute(text(f"""
        SELECT extract(epoch FROM now() - {_LAST_PROGRESS})
          FROM {_RUNS_WITH_RESULTS}
         WHERE r.id = :id GROUP BY r.id"""), {"id": run_id}).scalar_one()  # nosec B608


def append_batches(conn: Connection, run_id: str, batches: list[list[str]]) -> int | None:
    """Add a resume's batches to the run's planned ones; the index of the first, or None if the run finished.

    Appended, never replaced: a batch's index names its stage tasks, so ids never collide and a
    cancel revokes the resumed tasks too.
    """
    return conn.execute(text("""
        UPDATE pipeline_runs SET batches = coalesce(batches, '[]'::jsonb) || CAST(:batches AS jsonb)
         WHERE id = :id AND finished_at IS NULL
     RETURNING jsonb_array_length(batches) - :n"""), {"id": run_id, "batches": json.dumps(batches),
                                                      "n": len(batches)}).scalar()


def claim_resume(conn: Connection, run_id: str, gap_s: float) -> int | None:
    """Count one more resume of a STARTED run; its resumes so far, this one included, or None when it is
    not STARTED any more or another finder resumed it within `gap_s` (one resume at a time: its chains
    have not recorded anything yet, so the run still looks lost)."""
    return conn.execute(text("""
        UPDATE pipeline_runs SET resumes = resumes + 1, resumed_at = now()
         WHERE id = :id AND state = 'STARTED' AND finished_at IS NULL
           AND (resumed_at IS NULL OR resumed_at <= now() - make_interval(secs => :gap))
     RETURNING resumes"""), {"id": run_id, "gap": gap_s}).scalar()
