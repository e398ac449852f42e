"""The tables ingest owns: candles (bulk idempotent upserts), the fetch ledger, rejected candles."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg2
from sqlalchemy import Connection, text

from services.core.store.bulk import copy_from, copy_upsert
from services.core.timeparse import datetime_to_ms, ms_to_datetime
from services.ingest.validate import Rejection

__all__ = [
    "WindowResult",
    "upsert_candles",
    "upsert_candle_batch",
    "binary_candles",
    "copy_candle_columns",
    "store_rejections",
    "record_window",
    "windows_to_repair",
    "delete_settled_windows",
]

# Timeframes come in by name (Timeframe.name): that is what the columns hold, and the core
# store functions ingest calls alongside these take it the same way.


_CANDLE_COLUMNS = ("instrument_id", "timeframe", "ts", "open", "high", "low", "close", "volume", "is_closed")
_CANDLE_KEYS = ("instrument_id", "timeframe", "ts")
_CANDLE_VALUES = ("open", "high", "low", "close", "volume", "is_closed")

log = logging.getLogger(__name__)


def upsert_candles(conn: Connection, instrument_id: int, timeframe: str,
                   rows: Iterable[tuple[int, float, float, float, float, float, bool]]) -> int:
    """Bulk-merge one instrument's rows (ts_ms, o, h, l, c, v, is_closed); returns rows inserted or replaced."""
    return upsert_candle_batch(conn, timeframe, ((instrument_id, *row) for row in rows))


def upsert_candle_batch(conn: Connection, timeframe: str,
                        rows: Iterable[tuple[int, int, float, float, float, float, float, bool]]) -> int:
    """Bulk-merge rows of many instruments (instrument_id, ts_ms, o, h, l, c, v, is_closed) in one statement set.

    Closed candles are immutable: only a stored open candle may be replaced, and
    only when something changed, so re-running a fetch rewrites nothing. Returns the
    rows inserted or replaced.

    One read of what is stored in each instrument's span of the batch sorts the rows
    (ADR 0018): a row stored closed, or stored open and equal, is dropped unwritten; a
    row not stored is COPYed straight into candles; a stored open row that changed goes
    through the staging table and ON CONFLICT. If a concurrent writer stored one of the
    "new" keys first, that COPY fails inside a savepoint and those rows take the staging
    path too, so the batch is never lost.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return 0
    batch = _CandleColumns.of(rows) if isinstance(timeframe, str) and timeframe else None
    if batch is None:  # a value the fast path does not take as-is: the staging path, exactly as before
        return _merge_candles(conn, timeframe, rows)
    stored = _stored_candles(conn, timeframe, batch)
    new, changed = (batch, []) if not stored else _sort_candles(rows, stored)
    written = 0
    if new:
        if _copy_new_candles(conn, timeframe, new):
            written += len(new)
        else:
            changed += new.rows
    if changed:
        written += _merge_candles(conn, timeframe, changed)
    return written


_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, where binary COPY counts timestamps from (in µs)
_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # what ms_to_datetime can represent
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True, eq=False)
class _CandleColumns:
    """A batch's rows and their columns as arrays, when every value is a plain int, float or bool."""

    rows: list
    ids: np.ndarray
    ts: np.ndarray
    prices: tuple[np.ndarray, ...]  # open, high, low, close, volume
    closed: tuple[bool, ...]

    @classmethod
    def of(cls, rows: list) -> _CandleColumns | None:
        """None for anything else (wrong lengths, strings, None, NaN, out-of-range ids or times).

        The staging path's text COPY takes or refuses such values as it always has (NaN and
        None become NULL and fail NOT NULL), so that whole batch goes there unchanged.
        """
        try:
            columns = list(zip(*rows, strict=True))  # strict: every row as long as the first
        except ValueError:
            return None
        if len(columns) != len(_CANDLE_COLUMNS) - 1:
            return None
        numbers = {int, float}
        if (not set(map(type, columns[0])) <= {int} or not set(map(type, columns[1])) <= {int}
                or not set(map(type, columns[7])) <= {bool}
                or not all(set(map(type, column)) <= numbers for column in columns[2:7])):
            return None
        try:
            ids, ts = np.array(columns[0], np.int64), np.array(columns[1], np.int64)
        except OverflowError:
            return None
        prices = tuple(np.array(column, np.float64) for column in columns[2:7])
        if (ids.min() < _INT4_MIN or ids.max() > _INT4_MAX or ts.min() < _MIN_MS or ts.max() > _MAX_MS
                or any(np.isnan(column).any() for column in prices)):
            return None
        return cls(rows, ids, ts, prices, columns[7])

    def __len__(self) -> int:
        return len(self.rows)

    def spans(self) -> tuple[list[int], list[int], list[int]]:
        """Instrument ids with the first and last ts_ms each has in the batch."""
        ids, inverse = np.unique(self.ids, return_inverse=True)
        firsts = np.full(len(ids), _MAX_MS, np.int64)
        lasts = np.full(len(ids), _MIN_MS, np.int64)
        np.minimum.at(firsts, inverse, self.ts)
        np.maximum.at(lasts, inverse, self.ts)
        return ids.tolist(), firsts.tolist(), lasts.tolist()

    def binary_copy(self, timeframe: str) -> bytes:
        """The rows in PostgreSQL's binary COPY format, columns as in _CANDLE_COLUMNS."""
        return binary_candles(timeframe, self.ids, self.ts, self.prices, self.closed)


def binary_candles(timeframe: str, ids: np.ndarray, ts: np.ndarray, prices: Sequence[np.ndarray],
                   closed: Sequence[bool] | np.ndarray) -> bytes:
    """Candle columns (instrument ids, ts_ms, open … volume, is_closed) in PostgreSQL's binary COPY format.

    Binary, because text COPY spends most of its client time formatting floats and
    the server as much parsing them (ADR 0018); each field is its length, then its
    value, big-endian.
    """
    name = timeframe.encode()
    record = [("count", ">i2"), ("id_len", ">i4"), ("id", ">i4"), ("tf_len", ">i4"), ("tf", f"S{len(name)}"),
              ("ts_len", ">i4"), ("ts", ">i8")]
    for field in _CANDLE_VALUES[:5]:
        record += [(f"{field}_len", ">i4"), (field, ">f8")]
    record += [("is_closed_len", ">i4"), ("is_closed", "?")]
    out = np.empty(len(ts), np.dtype(record))
    out["count"], out["id_len"], out["tf_len"], out["ts_len"], out["is_closed_len"] = 9, 4, len(name), 8, 1
    out["id"], out["tf"], out["ts"], out["is_closed"] = ids, name, (ts - _PG_EPOCH_MS) * 1000, closed
    for field, column in zip(_CANDLE_VALUES[:5], prices, strict=True):
        out[f"{field}_len"], out[field] = 8, column
    # Header: signature, flags, extension length; trailer: a field count of -1.
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + out.tobytes() + b"\xff\xff"


def copy_candle_columns(conn: Connection, timeframe: str, ids: np.ndarray, ts: np.ndarray,
                        prices: Sequence[np.ndarray], closed: np.ndarray) -> int:
    """Binary-COPY candle columns straight into candles, with no stored-row check: only for rows nothing can
    conflict with (an instrument this transaction added); returns the rows copied."""
    return copy_from(conn, "candles", _CANDLE_COLUMNS, binary_candles(timeframe, ids, ts, prices, closed),
                     binary=True)


# What is stored within each instrument's span, in one index range scan per instrument:
# closed bars by open time only (they are never rewritten, so their values do not matter),
# open bars with their values. A batch is a fetch window per instrument, so the span holds
# about as many stored bars as the batch has rows.
_STORED_SQL = text("""
    SELECT instrument_id,
           array_agg(ts_ms) FILTER (WHERE is_closed) AS closed,
           array_agg(ts_ms) FILTER (WHERE NOT is_closed) AS open_ts,
           array_agg(open) FILTER (WHERE NOT is_closed) AS open,
           array_agg(high) FILTER (WHERE NOT is_closed) AS high,
           array_agg(low) FILTER (WHERE NOT is_closed) AS low,
           array_agg(close) FILTER (WHERE NOT is_closed) AS close,
           array_agg(volume) FILTER (WHERE NOT is_closed) AS volume
      FROM (SELECT c.instrument_id, (extract(epoch FROM c.ts) * 1000)::bigint AS ts_ms, c.is_closed,
                   c.open, c.high, c.low, c.close, c.volume
              FROM unnest(CAST(:ids AS integer[]), CAST(:firsts AS timestamptz[]), CAST(:lasts AS timestamptz[]))
                   AS b(instrument_id, first_ts, last_ts)
              JOIN candles c ON c.instrument_id = b.instrument_id AND c.timeframe = :tf
                            AND c.ts BETWEEN b.first_ts AND b.last_ts) AS stored
     GROUP BY instrument_id""")


def _stored_candles(conn: Connection, timeframe: str,
                    batch: _CandleColumns) -> dict[int, tuple[set[int], dict[int, tuple]]]:
    """Per instrument with bars stored in its span: the open times of the closed ones, the open ones' values."""
    ids, firsts, lasts = batch.spans()
    rows = conn.execute(_STORED_SQL, {"ids": ids, "tf": timeframe, "firsts": [ms_to_datetime(ms) for ms in firsts],
                                      "lasts": [ms_to_datetime(ms) for ms in lasts]}).all()
    stored = {}
    for instrument_id, closed, open_ts, *values in rows:
        open_bars = {} if open_ts is None else {ts: (*bar, False) for ts, *bar in zip(open_ts, *values, strict=True)}
        stored[instrument_id] = (set(closed or ()), open_bars)
    return stored


def _sort_candles(rows: list, stored: dict[int, tuple[set[int], dict[int, tuple]]]) -> tuple[_CandleColumns | None,
                                                                                              list]:
    """(rows not stored, stored open rows that changed); the rest would write nothing and are dropped."""
    new, changed = [], []
    for row in rows:
        held = stored.get(row[0])
        if held is None:
            new.append(row)
            continue
        ts = row[1]
        if ts in held[0]:
            continue  # stored closed: immutable
        was = held[1].get(ts)
        if was is None:
            new.append(row)
        elif tuple(row[2:]) != was:
            changed.append(row)  # ON CONFLICT decides: the bar may have closed since it was read
    return (_CandleColumns.of(new) if new else None), changed


def _merge_candles(conn: Connection, timeframe: str, rows: Iterable[Sequence]) -> int:
    """The staging path: COPY into a temp table, then INSERT … ON CONFLICT replacing only open bars that changed."""
    return copy_upsert(
        conn, "candles", _CANDLE_COLUMNS, _CANDLE_KEYS,
        ((instrument_id, timeframe, ms_to_datetime(ts), o, h, l, c, v, closed)
         for instrument_id, ts, o, h, l, c, v, closed in rows),
        update=_CANDLE_VALUES, update_where="NOT t.is_closed", stamp="updated_at",
    )


def _copy_new_candles(conn: Connection, timeframe: str, batch: _CandleColumns) -> bool:
    """COPY rows that were not stored when read straight into candles; False, with nothing written, if that failed."""
    savepoint = conn.begin_nested()
    try:
        copy_from(conn, "candles", _CANDLE_COLUMNS, batch.binary_copy(timeframe), binary=True)
    except psycopg2.Error as exc:
        savepoint.rollback()
        if isinstance(exc, psycopg2.errors.UniqueViolation):
            log.info("%d %s candle(s) met a concurrent writer's; merging them through staging", len(batch), timeframe)
        else:  # staging raises this error as the write path always has, or shows the binary path wrong
            log.warning("COPY of %d %s candle(s) failed (%s); merging them through staging",
                        len(batch), timeframe, str(exc).strip())
        return False
    savepoint.commit()
    return True


def store_rejections(conn: Connection, instrument_id: int, timeframe: str, rejections: list[Rejection]) -> int:
    """Keep refused rows with their reasons; the same refusal is stored once."""
    if not rejections:
        return 0
    return conn.execute(
        text("""
            INSERT INTO rejected_candles (instrument_id, timeframe, raw_ts, raw, reason, detail, source_file,
                                          source_row)
            VALUES (:i, :tf, :raw_ts, CAST(:raw AS jsonb), :reason, :detail, :file, :row)
            ON CONFLICT (instrument_id, timeframe, raw_ts, reason, source_file, source_row) DO NOTHING
        """),
        [
            {"i": instrument_id, "tf": timeframe, "raw_ts": r.raw_ts, "raw": json.dumps(r.raw),
             "reason": r.reason, "detail": r.detail, "file": r.source_file, "row": r.source_row}
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
