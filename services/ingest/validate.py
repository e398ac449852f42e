"""Candle validation: split a fetched batch into storable rows and rejected rows with reasons."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.core.timeframe import Timeframe

__all__ = ["Rejection", "ValidatedBatch", "validate_candles", "REJECTION_REASONS"]

REJECTION_REASONS = (
    "malformed",         # not six numeric fields
    "non_finite_price",  # NaN or infinity in open/high/low/close
    "non_positive_price",
    "high_below_low",
    "open_outside_range",
    "close_outside_range",
    "negative_volume",
    "misaligned_timestamp",
    "future_timestamp",
    "duplicate_timestamp",
    "out_of_order",
    "unparsable_date",   # imports: a date cell no layout rule reads
    "non_session",       # imports: a daily bar of a MIC venue on a day it did not trade (holiday, weekend)
)


@dataclass(frozen=True)
class Rejection:
    """One refused row: what the source sent and why it was refused."""

    raw: list
    raw_ts: int | None
    reason: str
    detail: str
    # Where an imported row came from: the file's name and its row (1 = the first after the header).
    source_file: str | None = None
    source_row: int | None = None


@dataclass
class ValidatedBatch:
    """Good rows as (ts_ms, o, h, l, c, v) tuples in ascending time, and the rejections."""

    good: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def _as_numbers(row: object) -> tuple[int, float, float, float, float, float] | None:
    if not isinstance(row, (list, tuple)) or len(row) < 6:
        return None
    try:
        ts = row[0]
        if isinstance(ts, float) and not ts.is_integer():
            return None
        return (int(ts), *(float(value) for value in row[1:6]))
    except (TypeError, ValueError, OverflowError):
        return None


def _price_problem(o: float, h: float, l: float, c: float, v: float) -> tuple[str, str] | None:
    prices = (o, h, l, c)
    if not all(math.isfinite(p) for p in prices):
        return "non_finite_price", f"prices {prices}"
    if min(prices) <= 0:
        return "non_positive_price", f"prices {prices}"
    if h < l:
        return "high_below_low", f"high {h} < low {l}"
    if not l <= o <= h:
        return "open_outside_range", f"open {o} outside [{l}, {h}]"
    if not l <= c <= h:
        return "close_outside_range", f"close {c} outside [{l}, {h}]"
    if not math.isfinite(v) or v < 0:
        return "negative_volume", f"volume {v}"
    return None


def _time_problem(ts: int, tf: Timeframe, now_ms: int, last_ts: int | None) -> tuple[str, str] | None:
    if ts % tf.ms:
        return "misaligned_timestamp", f"{ts} is not a multiple of {tf.ms} ms"
    if ts > now_ms:
        return "future_timestamp", f"{ts} starts after now ({now_ms})"
    if last_ts is not None and ts == last_ts:
        return "duplicate_timestamp", f"{ts} already in this batch"
    if last_ts is not None and ts < last_ts:
        return "out_of_order", f"{ts} after {last_ts}"
    return None


def validate_candles(rows: list, tf: Timeframe, now_ms: int) -> ValidatedBatch:
    """Check every row; keep the first of duplicates, refuse rows that go back in time."""
    batch = ValidatedBatch()
    last_ts: int | None = None
    for raw in rows:
        numbers = _as_numbers(raw)
        if numbers is None:
            raw_ts = raw[0] if isinstance(raw, (list, tuple)) and raw and isinstance(raw[0], int) else None
            batch.rejected.append(Rejection(_jsonable(raw), raw_ts, "malformed", f"unreadable row {raw!r}"[:200]))
            continue
        ts = numbers[0]
        problem = _time_problem(ts, tf, now_ms, last_ts) or _price_problem(*numbers[1:])
        if problem:
            batch.rejected.append(Rejection(_jsonable(raw), ts, *problem))
            continue
        batch.good.append(numbers)
        last_ts = ts
    return batch


def _jsonable(raw: object) -> list:
    """Rows go into a JSONB column; NaN is not JSON, so non-finite floats become strings."""
    values = raw if isinstance(raw, (list, tuple)) else [raw]
    out = []
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            out.append(str(value))
        elif isinstance(value, (int, float, str)) or value is None:
            out.append(value)
        else:
            out.append(repr(value))
    return out
