"""The `schedule_changes` table: every change to a schedule job, who made it, and the job before and after."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

__all__ = ["ACTIONS", "record_change", "job_history", "latest_changes"]

# add, change (cron, interval, enabled, scope, priority, timezone), delete, reset (back to the seed).
ACTIONS = ("add", "change", "delete", "reset")


def record_change(conn: Connection, job: str, actor: str, action: str, before: dict | None,
                  after: dict | None) -> None:
    """One change, in the caller's transaction, so the history and the change stand or fall together."""
    if action not in ACTIONS:
        raise ValueError(f"unknown schedule action {action!r}")
    conn.execute(text("""
        INSERT INTO schedule_changes (job, actor, action, before, after)
        VALUES (:job, :actor, :action, CAST(:before AS jsonb), CAST(:after AS jsonb))"""),
        {"job": job, "actor": actor, "action": action,
         "before": None if before is None else json.dumps(before),
         "after": None if after is None else json.dumps(after)})


def job_history(conn: Connection, job: str, limit: int) -> list[dict]:
    """The job's changes, newest first."""
    rows = conn.execute(text("""
        SELECT id, job, changed_at, actor, action, before, after FROM schedule_changes
        WHERE job = :job ORDER BY id DESC LIMIT :limit"""), {"job": job, "limit": limit}).mappings()
    return [{**row, "changed_at": row["changed_at"].isoformat()} for row in rows]


def latest_changes(conn: Connection) -> dict[str, tuple[str, dict | None]]:
    """Each job's latest change: (action, job after it)."""
    rows = conn.execute(text("""
        SELECT DISTINCT ON (job) job, action, after FROM schedule_changes ORDER BY job, id DESC"""))
    return {row.job: (row.action, row.after) for row in rows}
