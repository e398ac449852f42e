"""The per-stage watermarks (`stage_watermarks`): how far each analysis stage has processed a series."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, text

from services.core.timeframe import Timeframe
from services.core.timeparse import ms_to_datetime

__all__ = ["read_watermark", "write_watermark", "write_watermarks", "rewind_watermarks"]


def read_watermark(conn: Connection, instrument_id: int, timeframe: str, stage: str) -> datetime | None:
    """The last closed bar `stage` has fully processed, or None."""
    return conn.execute(
        text("SELECT last_ts FROM stage_watermarks WHERE instrument_id = :i AND timeframe = :tf AND stage = :s"),
        {"i": instrument_id, "tf": timeframe, "s": stage},
    ).scalar_one_or_none()


def write_watermark(conn: Connection, instrument_id: int, timeframe: str, stage: str, last_ts: datetime) -> None:
    """Advance the stage's watermark (never moves it back)."""
    conn.execute(
        text("""INSERT INTO stage_watermarks (instrument_id, timeframe, stage, last_ts)
                VALUES (:i, :tf, :s, :ts)
                ON CONFLICT (instrument_id, timeframe, stage) DO UPDATE
                   SET last_ts = EXCLUDED.last_ts, updated_at = now()
                 WHERE stage_watermarks.last_ts < EXCLUDED.last_ts"""),
        {"i": instrument_id, "tf": timeframe, "s": stage, "ts": last_ts},
    )


def write_watermarks(conn: Connection, timeframe: str, stage: str, marks: Mapping[int, datetime]) -> None:
    """write_watermark for many instruments ({instrument id: last_ts}) in one statement."""
    if not marks:
        return
    conn.execute(
        text("""INSERT INTO stage_watermarks (instrument_id, timeframe, stage, last_ts)
                SELECT i, :tf, :s, ts FROM unnest(CAST(:ids AS integer[]), CAST(:ts AS timestamptz[])) AS m(i, ts)
                ON CONFLICT (instrument_id, timeframe, stage) DO UPDATE
                   SET last_ts = EXCLUDED.last_ts, updated_at = now()
                 WHERE stage_watermarks.last_ts < EXCLUDED.last_ts"""),
        {"ids": list(marks), "ts": list(marks.values()), "tf": timeframe, "s": stage},
    )


def rewind_watermarks(conn: Connection, instrument_id: int, timeframe: Timeframe, first_ts_ms: int) -> int:
    """Move every stage back to just before `first_ts_ms` when candles landed behind it.

    A backfill or repair can add bars older than what indicators and signals already
    processed; without this they would never be analysed.
    """
    return conn.execute(text("""
        UPDATE stage_watermarks SET last_ts = :before, updated_at = now()
         WHERE instrument_id = :i AND timeframe = :tf AND last_ts >= :first"""),
        {"i": instrument_id, "tf": timeframe.name, "first": ms_to_datetime(first_ts_ms),
         "before": ms_to_datetime(first_ts_ms - timeframe.ms)}).rowcount
