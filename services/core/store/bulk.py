"""Bulk idempotent writes: COPY rows into a staging table, then one INSERT … ON CONFLICT."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, text

__all__ = ["copy_upsert"]


def _cell(value: object) -> str:
    # COPY text format: \N is NULL; tabs, newlines and backslashes must be escaped.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)  # every bit of the double survives the round trip
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _changed(columns: Sequence[str], approximate: Sequence[str], tolerance: float, scale: float) -> str:
    exact = [c for c in columns if c not in approximate]
    tests = []
    if exact:
        tests.append(f"({', '.join(f't.{c}' for c in exact)}) IS DISTINCT FROM "
                     f"({', '.join(f'EXCLUDED.{c}' for c in exact)})")
    for c in (c for c in columns if c in approximate):
        tests.append(f"((t.{c} IS NULL) <> (EXCLUDED.{c} IS NULL) OR abs(t.{c} - EXCLUDED.{c}) > "
                     f"{tolerance!r} * greatest(abs(t.{c}), abs(EXCLUDED.{c}), {float(scale)!r}))")
    return "(" + " OR ".join(tests) + ")"


def copy_upsert(conn: Connection, table: str, columns: Sequence[str], keys: Sequence[str],
                rows: Iterable[Sequence[object]], update: Sequence[str] = (), update_where: str = "",
                stamp: str | None = None, approximate: Sequence[str] = (), tolerance: float = 0.0,
                scale: float = 0.0) -> int:
    """Merge `rows` into `table` keyed by `keys`; returns how many rows were inserted or changed.

    Only `update` columns are overwritten on conflict, and only when one of them
    differs (plus `update_where`, referring to the stored row as `t`), so writing
    the same rows twice changes nothing; `stamp` names a column set to now() on
    such an update. `approximate` float columns count as changed only when they
    move by more than `tolerance` of their magnitude (or of `scale`, if larger): a
    recomputation that agrees to the last few bits is not a change. With no `update` columns existing rows stay.
    """
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_cell(value) for value in row) + "\n")
    if not buffer.tell():
        return 0
    stage = f"stage_{table}"
    col_list = ", ".join(columns)
    conn.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"))
    conn.execute(text(f"TRUNCATE {stage}"))
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY {stage} ({col_list}) FROM STDIN", buffer)
    finally:
        cursor.close()
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    if update:
        assignments = ", ".join([f"{col} = EXCLUDED.{col}" for col in update] + ([f"{stamp} = now()"] if stamp else []))
        changed = _changed(update, approximate, tolerance, scale)
        where = f"{changed} AND ({update_where})" if update_where else changed
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {assignments} WHERE {where}"
    result = conn.execute(text(f"INSERT INTO {table} AS t ({col_list}) SELECT {col_list} FROM {stage} {conflict}"))
    conn.execute(text(f"TRUNCATE {stage}"))
    return result.rowcount
