"""The import_uploads table: files POST /api/imports accepted, held until the ingest worker has imported them."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

__all__ = ["stage_upload", "read_upload", "delete_upload"]


def stage_upload(conn: Connection, run_id: str, filename: str, content: bytes, options: dict) -> None:
    """Hold an uploaded file for the import run `run_id`."""
    conn.execute(text("""
        INSERT INTO import_uploads (run_id, filename, content, options)
        VALUES (:id, :filename, :content, CAST(:options AS jsonb))"""),
        {"id": run_id, "filename": filename, "content": content, "options": json.dumps(options)})


def read_upload(conn: Connection, run_id: str) -> dict | None:
    """The held file (filename, content, options), or None once imported."""
    row = conn.execute(text("SELECT filename, content, options FROM import_uploads WHERE run_id = :id"),
                       {"id": run_id}).mappings().first()
    return None if row is None else {**row, "content": bytes(row["content"])}


def delete_upload(conn: Connection, run_id: str) -> None:
    """Drop the held file: the run has recorded its outcome."""
    conn.execute(text("DELETE FROM import_uploads WHERE run_id = :id"), {"id": run_id})
