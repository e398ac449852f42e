"""Indicator-stage use cases: load candles, run the pure transforms, upsert what changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, text

from services.core.db import each_in_savepoint
from services.core.store.bulk import copy_upsert
from services.core.store.marketdata import load_candles, load_indicators, newest_closed_ts
from services.core.store.watermarks import read_watermark, write_watermark
from services.core.timeparse import ms_to_datetime
from services.indicators.engine import (
    INDICATOR_COLUMNS,
    IndicatorParams,
    classify_regime,
    compute_indicators,
    compute_tail,
    warmup_bars,
)
from services.indicators.levels import LevelParams, find_levels
from services.indicators.patterns import PatternParams, detect_patterns

__all__ = ["refresh_indicators", "refresh_regime", "refresh_patterns", "refresh_levels",
           "upsert_indicator_rows", "rows_written_here", "CHANNEL_COLUMNS"]

CHANNEL_COLUMNS = ("channel_high", "channel_low")
_KEYS = ("instrument_id", "timeframe", "ts")
# Tail recomputation agrees with full history to ~1e-12 of the price scale (the
# engine's TAIL_TOLERANCE); differences below this fraction of the price scale
# (or of the value, if larger) are not changes worth a write.
_SAME_VALUE = 1e-10
# Patterns look back a few bars (stars span three, trend context more).
_PATTERN_CONTEXT_BARS = 30


def _first_bar(candles: pd.DataFrame, mark: datetime | None, since: datetime | None) -> pd.Timestamp | None:
    """Where recomputation starts: at `since`, else just after the watermark, else the first bar."""
    index = candles.index
    if since is not None:
        index = index[index >= since]
    elif mark is not None:
        index = index[index > mark]
    return index[0] if len(index) else None


def _last_closed(frame: pd.DataFrame) -> datetime | None:
    closed = frame.index[frame["is_closed"].to_numpy(bool)]
    return closed[-1].to_pydatetime() if len(closed) else None


def _as_rows(instrument_id: int, timeframe: str, frame: pd.DataFrame, columns: Sequence[str]):
    values = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), None)
    for ts, row in zip(frame.index, values.itertuples(index=False, name=None), strict=True):
        yield (instrument_id, timeframe, ts.to_pydatetime(), *row)


def refresh_indicators(conn: Connection, instrument_id: int, timeframe: str, params: IndicatorParams,
                       columns: Sequence[str] = INDICATOR_COLUMNS, stage: str = "indicators",
                       since: datetime | None = None) -> dict:
    """Recompute `columns` from the bar after the watermark (or `since`) on; O(new bars).

    Only a tail long enough for the warm-up is read, and only rows whose values
    changed are written, so a rerun writes nothing.
    """
    mark = read_watermark(conn, instrument_id, timeframe, stage)
    candles = load_candles(conn, instrument_id, timeframe, since=since or mark, bars_before=warmup_bars(params))
    start = _first_bar(candles, mark, since)
    if start is None:
        return {"bars": 0, "rows_written": 0}
    # From the first bar stored there is no warm-up to reuse: compute the whole history.
    values = compute_indicators(candles, params) if start == candles.index[0] else compute_tail(candles, params, start)
    values = values.loc[values.index >= start]
    values["is_closed"] = candles.loc[values.index, "is_closed"]
    written_columns = (*columns, *(("regime",) if stage == "indicators" else ()), "is_closed")
    written = upsert_indicator_rows(conn, _as_rows(instrument_id, timeframe, values, written_columns),
                                    written_columns, scale=float(candles["close"].abs().max()))
    last = _last_closed(values)
    if last is not None:
        write_watermark(conn, instrument_id, timeframe, stage, last)
    return {"bars": len(values), "rows_written": written}


def upsert_indicator_rows(conn: Connection, rows: Iterable[Sequence], columns: Sequence[str], scale: float) -> int:
    """Merge rows (instrument_id, timeframe, ts, *columns) into indicator_values; returns how many changed.

    Indicator columns count as changed only beyond _SAME_VALUE of `scale` (or of
    the value, if larger): a recomputation that agrees to the last bits is no write.
    """
    return copy_upsert(conn, "indicator_values", (*_KEYS, *columns), _KEYS, rows,
                       update=columns, stamp="computed_at",
                       # A slower, older computation must not reopen a bar another run closed.
                       update_where="EXCLUDED.is_closed OR NOT t.is_closed",
                       approximate=[column for column in columns if column in INDICATOR_COLUMNS],
                       tolerance=_SAME_VALUE, scale=scale)


def rows_written_here(conn: Connection, timeframe: str, since: Mapping[int, datetime]) -> dict[int, int]:
    """{instrument id: indicator rows this transaction wrote at or after its `since`}, in one query.

    A row this transaction inserted or updated carries its transaction id as xmin;
    untouched rows keep an older one. This splits one batch upsert's count by instrument.
    """
    # LATERAL: one primary-key range scan per instrument, never a scan of the whole table.
    counts = conn.execute(text("""
        SELECT w.instrument_id, v.written
          FROM unnest(CAST(:ids AS integer[]), CAST(:since AS timestamptz[])) AS w(instrument_id, since)
         CROSS JOIN LATERAL (
               SELECT count(*) AS written FROM indicator_values v
                WHERE v.instrument_id = w.instrument_id AND v.timeframe = :tf AND v.ts >= w.since
                  AND v.xmin = pg_current_xact_id()::xid) AS v"""),
        {"ids": list(since), "since": list(since.values()), "tf": timeframe}).all()
    return {instrument_id: 0 for instrument_id in since} | dict(counts)


def refresh_regime(conn: Connection, instrument_id: int, timeframe: str, params: IndicatorParams,
                   since: datetime | None = None) -> dict:
    """Re-derive the regime column from stored indicator values (after a rule change, say)."""
    mark = None if since is not None else read_watermark(conn, instrument_id, timeframe, "regime")
    stored = load_indicators(conn, instrument_id, timeframe, since=since or mark)
    if mark is not None:
        stored = stored.loc[stored.index > mark]
    if stored.empty:
        return {"bars": 0, "rows_written": 0}
    closes = load_candles(conn, instrument_id, timeframe, since=stored.index[0])["close"]
    stored["regime"] = classify_regime(stored.join(closes, how="left"), params)
    written = copy_upsert(conn, "indicator_values", (*_KEYS, "regime", "is_closed"), _KEYS,
                          _as_rows(instrument_id, timeframe, stored, ("regime", "is_closed")),
                          update=("regime",), stamp="computed_at")
    last = _last_closed(stored)
    if last is not None:
        write_watermark(conn, instrument_id, timeframe, "regime", last)
    return {"bars": len(stored), "rows_written": written}


def _new_patterns(conn: Connection, instrument_id: int, timeframe: str, params: PatternParams,
                  since: datetime | None) -> tuple[list[tuple], datetime | None, dict]:
    """Pattern rows on closed bars after the watermark (or from `since`): (rows, last closed bar, counts)."""
    mark = None if since is not None else read_watermark(conn, instrument_id, timeframe, "patterns")
    candles = load_candles(conn, instrument_id, timeframe, since=since or mark, bars_before=_PATTERN_CONTEXT_BARS)
    closed = candles.loc[candles["is_closed"]]
    start = _first_bar(closed, mark, since)
    if start is None:
        return [], None, {"bars": 0, "patterns": 0}
    found = detect_patterns(closed[["open", "high", "low", "close", "volume"]], params)
    found = found.loc[found["ts"] >= start]
    columns = found[["ts", "pattern", "direction", "strength"]]
    rows = [(instrument_id, timeframe, ts.to_pydatetime(), name, direction, float(strength))
            for ts, name, direction, strength in columns.itertuples(index=False)]
    return rows, closed.index[-1].to_pydatetime(), {"bars": int((closed.index >= start).sum()), "patterns": len(found)}


def _write_patterns(conn: Connection, timeframe: str, rows: list[tuple], marks: dict[int, datetime]) -> int:
    written = copy_upsert(conn, "patterns", (*_KEYS, "pattern", "direction", "strength"), (*_KEYS, "pattern"),
                          rows, update=("direction", "strength"))
    for instrument_id, last in marks.items():
        write_watermark(conn, instrument_id, timeframe, "patterns", last)
    return written


def refresh_patterns(conn: Connection, instrument_id: int, timeframe: str, params: PatternParams = PatternParams(),
                     since: datetime | None = None) -> dict:
    """Detect patterns on closed bars after the watermark (or from `since`); idempotent upsert."""
    rows, last, counts = _new_patterns(conn, instrument_id, timeframe, params, since)
    if last is None:
        return {**counts, "rows_written": 0}
    return {**counts, "rows_written": _write_patterns(conn, timeframe, rows, {instrument_id: last})}


def refresh_pattern_batch(conn: Connection, instruments: dict[str, int], timeframe: str,
                          params: PatternParams = PatternParams(),
                          since: datetime | None = None) -> dict[str, dict | Exception]:
    """Patterns for a batch of instruments in one pass and one write; per symbol its counts or error.

    Each instrument is read inside its own savepoint, so one that fails leaves the others' work.
    """
    found = each_in_savepoint(conn, instruments, lambda i: (i, *_new_patterns(conn, i, timeframe, params, since)))
    settled = [result for result in found.values() if not isinstance(result, Exception)]
    # One upsert for the batch; a pattern is rewritten only when its direction or strength changed.
    _write_patterns(conn, timeframe, [row for _, rows, _, _ in settled for row in rows],
                    {i: last for i, _, last, _ in settled if last is not None})
    return {symbol: result if isinstance(result, Exception) else result[3] for symbol, result in found.items()}


def refresh_levels(conn: Connection, instrument_id: int, timeframe: str, lookback_bars: int,
                   params: LevelParams = LevelParams()) -> dict:
    """Replace the instrument's support/resistance set with one found on its last closed bars."""
    newest_ms = newest_closed_ts(conn, [instrument_id], timeframe).get(instrument_id)
    newest_closed = None if newest_ms is None else ms_to_datetime(newest_ms)
    if newest_closed is None:
        return {"levels": 0, "rows_written": 0, "removed": 0}
    recent = load_candles(conn, instrument_id, timeframe, since=newest_closed, bars_before=lookback_bars)
    recent = recent.loc[recent["is_closed"]]
    levels = find_levels(recent[["open", "high", "low", "close", "volume"]], params)
    rows = [(instrument_id, timeframe, kind, float(price), int(touches), float(strength),
             first.to_pydatetime(), last.to_pydatetime())
            for kind, price, touches, strength, first, last in levels[
                ["kind", "price", "touches", "strength", "first_ts", "last_ts"]].itertuples(index=False)]
    removed = conn.execute(text(
        "DELETE FROM levels WHERE instrument_id = :i AND timeframe = :tf "
        "AND NOT ((kind, price) = ANY(SELECT * FROM unnest(CAST(:kinds AS text[]), CAST(:prices AS float8[]))))"
    ), {"i": instrument_id, "tf": timeframe, "kinds": [r[2] for r in rows], "prices": [r[3] for r in rows]}).rowcount
    written = copy_upsert(conn, "levels", ("instrument_id", "timeframe", "kind", "price", "touches", "strength",
                                           "first_ts", "last_ts"),
                          ("instrument_id", "timeframe", "kind", "price"), rows,
                          update=("touches", "strength", "first_ts", "last_ts"), stamp="computed_at")
    return {"levels": len(rows), "rows_written": written, "removed": removed}
