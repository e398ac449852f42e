"""The signal stage's input for a batch: each instrument's ready bars and where its new ones start, in two queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, text

from services.core.models import INDICATOR_COLUMNS
from services.core.pipeline.stages import STAGES
from services.core.timeparse import datetime_to_ms
from services.signals.bars import Bars
from services.signals.rules import NEEDED_COLUMNS

__all__ = ["ReadyBars", "read_ready_bars"]

# bandit B608 (marked nosec below): only NEEDED_COLUMNS, the strategies' own column names, is
# interpolated; every value is a bound parameter.

_MARK = STAGES["signals"].watermark
# Only bars the stage it waits for has fully processed are read.
_READY_MARK = STAGES[STAGES["signals"].waits_for].watermark


@dataclass(frozen=True)
class ReadyBars:
    """Every instrument's ready bars end to end (instrument, then ts), and which of them are new."""

    instrument_ids: np.ndarray  # per bar
    ts_ms: np.ndarray  # per bar, epoch milliseconds
    bars: Bars
    new: np.ndarray  # per bar: after the watermark (or at/after `since`), so its signals are looked for


def _starts(conn: Connection, instrument_ids: Sequence[int], timeframe: str,
            since: datetime | None) -> list[tuple[int, datetime | None, datetime]]:
    """(instrument, first bar to look at or None for all, last bar the indicators stage computed), for
    the instruments that have one: the signals watermark, unless `since` says where to start."""
    rows = conn.execute(text("""
        SELECT i.id, m.last_ts, r.last_ts
          FROM unnest(CAST(:ids AS integer[])) AS i(id)
          LEFT JOIN stage_watermarks m ON m.instrument_id = i.id AND m.timeframe = :tf AND m.stage = :mark
          JOIN stage_watermarks r ON r.instrument_id = i.id AND r.timeframe = :tf AND r.stage = :ready"""),
        {"ids": list(instrument_ids), "tf": timeframe, "mark": _MARK, "ready": _READY_MARK}).all()
    return [(instrument_id, since if since is not None else mark, computed) for instrument_id, mark, computed in rows]


def read_ready_bars(conn: Connection, instrument_ids: Sequence[int], timeframe: str,
                    since: datetime | None = None) -> ReadyBars:
    """Closed bars the indicators stage has computed, from one bar before each instrument's first new bar.

    A bar is ready when its candle has an indicator row marked closed at or before the
    indicators watermark; the bar before the first new one is context for crossings.
    With no signals watermark (and no `since`) every ready bar is new.
    """
    starts = _starts(conn, instrument_ids, timeframe, since)
    # One primary-key range scan per instrument (LATERAL with its own ORDER BY), from the
    # last candle before its first new bar: the same window refresh_signals reads.
    rows = conn.execute(text(f"""
        SELECT w.instrument_id, (extract(epoch FROM b.ts) * 1000)::bigint, b.close,
               {', '.join(f'b.{col}' for col in NEEDED_COLUMNS)}
          FROM unnest(CAST(:ids AS integer[]), CAST(:firsts AS timestamptz[]), CAST(:computed AS timestamptz[]))
               WITH ORDINALITY AS w(instrument_id, first, computed, position)
         CROSS JOIN LATERAL (
               SELECT max(p.ts) AS ts FROM candles p
                WHERE p.instrument_id = w.instrument_id AND p.timeframe = :tf AND p.ts < w.first) AS context
         CROSS JOIN LATERAL (
               SELECT c.ts, c.close, {', '.join(f'v.{col}' for col in NEEDED_COLUMNS)}
                 FROM candles c
                 JOIN indicator_values v ON v.instrument_id = c.instrument_id AND v.timeframe = c.timeframe
                                        AND v.ts = c.ts AND v.is_closed
                WHERE c.instrument_id = w.instrument_id AND c.timeframe = :tf
                  AND c.ts >= coalesce(context.ts, '-infinity') AND c.ts <= w.computed
                ORDER BY c.ts) AS b
         ORDER BY w.position, b.ts"""),  # nosec B608
        {"ids": [s[0] for s in starts], "firsts": [s[1] for s in starts], "computed": [s[2] for s in starts],
         "tf": timeframe}).cursor.fetchall()
    columns = list(zip(*rows, strict=True)) or [()] * (3 + len(NEEDED_COLUMNS))
    ids, ts_ms = np.array(columns[0], dtype=np.int64), np.array(columns[1], dtype=np.int64)
    # The indicator values are floats; the regime is a label.
    indicators = {col: np.array(values, dtype="float64" if col in INDICATOR_COLUMNS else object)
                  for col, values in zip(NEEDED_COLUMNS, columns[3:], strict=True)}
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return ReadyBars(ids, ts_ms, Bars(np.array(columns[2], dtype="float64"), indicators, first),
                     _new(ids, ts_ms, {s[0]: s[1] for s in starts}, since is not None))


def _new(ids: np.ndarray, ts_ms: np.ndarray, firsts: dict[int, datetime | None], inclusive: bool) -> np.ndarray:
    """Bars at or after `since` (inclusive), else strictly after the watermark; all of them with neither."""
    none = np.iinfo(np.int64).min
    bound = np.fromiter((none if firsts[i] is None else datetime_to_ms(firsts[i]) for i in ids.tolist()),
                        dtype=np.int64, count=len(ids))
    return (ts_ms >= bound) if inclusive else (ts_ms > bound) | (bound == none)
