"""The tables ingest owns: candles (bulk idempotent upserts), the fetch ledger, rejected candles."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, text

from services.core.store.bulk import copy_upsert
from services.core.timeparse import datetime_to_ms, ms_to_datetime
from services.ingest.validate import Rejection

__all__ = [
    "WindowResult",
    "last_closed_ts",
    "newest_closed_ts",
    "upsert_candles",
    "upsert_candle_batch",
    "store_rejections",
    "record_window",
    "windows_to_repair",
    "delete_settled_windows",
]

# Timeframes come in by name (Timeframe.name): that is what the columns hold, and the core
# store functions ingest calls alongside these take it the same way.


def last_closed_ts(conn: Connection, instrument_id: int, timeframe: str) -> int | None:
    """Open time (ms) of the newest closed candle stored, or None."""
    value = conn.execute(
        text("SELECT max(ts) FROM candles WHERE instrument_id = :i AND timeframe = :tf AND is_closed"),
        {"i": instrument_id, "tf": timeframe},
    ).scalar_one()
    return None if value is None else datetime_to_ms(value)


def newest_closed_ts(conn: Connection, instrument_ids: list[int], timeframe: str) -> dict[int, int]:
    """Per instrument, open time (ms) of its newest closed candle; instruments with none are absent.

    One probe per instrument down the primary key from its newest bar, not a scan of its history.
    """
    rows = conn.execute(text("""
        SELECT i.id, (SELECT max(c.ts) FROM candles c
                       WHERE c.instrument_id = i.id AND c.timeframe = :tf AND c.is_closed)
          FROM unnest(CAST(:ids AS integer[])) AS i(id)"""), {"ids": list(instrument_ids), "tf": timeframe}).all()
    return {instrument_id: datetime_to_ms(ts) for instrument_id, ts in rows if ts is not None}


_CANDLE_COLUMNS = ("instrument_id", "timeframe", "ts", "open", "high", "low", "close", "volume", "is_closed")


def upsert_candles(conn: Connection, instrument_id: int, timeframe: str,
                   rows: Iterable[tuple[int, float, float, float, float, float, bool]]) -> int:
    """Bulk-merge one instrument's rows (ts_ms, o, h, l, c, v, is_closed); returns rows inserted or replaced."""
    return upsert_candle_batch(conn, timeframe, ((instrument_id, *row) for row in rows))


def upsert_candle_batch(conn: Connection, timeframe: str,
                        rows: Iterable[tuple[int, int, float, float, float, float, float, bool]]) -> int:
    """Bulk-merge rows of many instruments (instrument_id, ts_ms, o, h, l, c, v, is_closed) in one statement.

    Closed candles are immutable: only a stored open candle may be replaced, and
    only when something changed, so re-running a fetch rewrites nothing.
    """
    return copy_upsert(
        conn, "candles", _CANDLE_COLUMNS, ("instrument_id", "timeframe", "ts"),
        ((instrument_id, timeframe, ms_to_datetime(ts), o, h, l, c, v, closed)
         for instrument_id, ts, o, h, l, c, v, closed in rows),
        update=("open", "high", "low", "close", "volume", "is_closed"),
        update_where="NOT t.is_closed",
        stamp="updated_at",
    )


def store_rejections(conn: Connection, instrument_id: int, timeframe: str, rejections: list[Rejection]) -> int:
    """Keep refused rows with their reasons; the same refusal is stored once."""
    if not rejections:
        return 0
    return conn.execute(
        text("""
            INSERT INTO rejected_candles (instrument_id, timeframe, raw_ts, raw, reason, detail)
            VALUES (:i, :tf, :raw_ts, CAST(:raw AS jsonb), :reason, :detail)
            ON CONFLICT (instrument_id, timeframe, raw_ts, reason) DO NOTHING
        """),
        [
            {"i": instrument_id, "tf": timeframe, "raw_ts": r.raw_ts, "raw": json.dumps(r.raw),
             "reason": r.reason, "detail": r.detail}
            for r in rejections
        ],
    ).rowcount


@dataclass(frozen=True)
class WindowResult:
    """How one fetch window went, as the ledger records it."""

    start_ms: int
    end_ms: int
    status: str  # ok | gaps | empty | failed
    candles: int
    rejected: int
    missing: int
    attempts: int  # requests made by this fetch (retries included)
    error: str | None = None


def record_window(conn: Connection, instrument_id: int, timeframe: str, entry: WindowResult) -> None:
    """Write the window's outcome; a re-fetch of the same window updates its row."""
    conn.execute(
        text("""
            INSERT INTO fetch_ledger (instrument_id, timeframe, window_start, window_end, status,
                                      candles, rejected, missing, attempts, error)
            VALUES (:i, :tf, :start, :end, :status, :candles, :rejected, :missing, :attempts, :error)
            ON CONFLICT ON CONSTRAINT uq_fetch_ledger_window DO UPDATE
               SET status = EXCLUDED.status, candles = EXCLUDED.candles, rejected = EXCLUDED.rejected,
                   missing = EXCLUDED.missing, error = EXCLUDED.error, fetched_at = now(),
                   attempts = EXCLUDED.attempts, fetches = fetch_ledger.fetches + 1
        """),
        {"i": instrument_id, "tf": timeframe, "start": ms_to_datetime(entry.start_ms),
         "end": ms_to_datetime(entry.end_ms), "status": entry.status, "candles": entry.candles,
         "rejected": entry.rejected, "missing": entry.missing, "attempts": entry.attempts, "error": entry.error},
    )


def windows_to_repair(conn: Connection, exchange: str, max_fetches: int, limit: int) -> list[dict]:
    """This exchange's failed and gappy windows fetched fewer than `max_fetches` times; oldest first."""
    rows = conn.execute(
        text("""
            SELECT l.instrument_id, i.exchange, i.symbol, l.timeframe, l.window_start, l.window_end,
                   l.status, l.attempts
              FROM fetch_ledger l JOIN instruments i ON i.id = l.instrument_id
             WHERE l.status IN ('failed', 'gaps') AND l.fetches < :max_fetches AND i.exchange = :exchange
             ORDER BY l.window_start LIMIT :limit
        """),
        {"max_fetches": max_fetches, "limit": limit, "exchange": exchange},
    ).mappings().all()
    return [
        {**row, "start_ms": datetime_to_ms(row["window_start"]), "end_ms": datetime_to_ms(row["window_end"])}
        for row in rows
    ]


def delete_settled_windows(conn: Connection, days: int) -> int:
    """Drop ok and empty ledger rows older than `days`; failed and gappy ones stay for repair."""
    return conn.execute(text("""
        DELETE FROM fetch_ledger
         WHERE status IN ('ok', 'empty') AND fetched_at < now() - make_interval(days => :d)"""), {"d": days}).rowcount
