"""Row checks of an imported series, column-wise: the exchange path's rules plus dates, sessions and duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from services.core.timeframe import Timeframe
from services.ingest.files.refusals import ImportRefused
from services.ingest.validate import Rejection

__all__ = ["SeriesRows", "CheckedSeries", "check_series", "check_spacing"]


@dataclass
class SeriesRows:
    """One symbol's rows of a file as columns: row numbers (1 = first after the header), instants, prices."""

    rows: np.ndarray          # int64
    ts: np.ndarray            # int64 epoch ms (the session date for a calendar venue's daily bars)
    date_ok: np.ndarray       # bool: the date cell was read
    prices: np.ndarray        # float64 (n, 5): open, high, low, close, volume; NaN where unreadable
    numbers_ok: np.ndarray    # bool: every price and volume cell was read
    session_ok: np.ndarray    # bool: a session of the venue (all True for a 24/7 exchange or intraday bars)
    cells: Callable[[int], list] = field(repr=False, default=lambda i: [])  # row i's cells as read (rejected rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class CheckedSeries:
    """The rows to store, in ascending time, and the rows refused."""

    ts: np.ndarray
    prices: np.ndarray
    rejected: list[Rejection]
    repeats: int  # identical repeats of a stored row, collapsed into it


def _reasons(rows: SeriesRows, tf: Timeframe, now_ms: int) -> tuple[np.ndarray, list[tuple[str, np.ndarray, str]]]:
    """(the index of the first failing check per row, -1 if none; the checks as (reason, failing, detail))."""
    o, h, l, c, v = rows.prices.T
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(rows.prices[:, :4]).all(axis=1)
        checks = [
            ("unparsable_date", ~rows.date_ok, "the date cell could not be read"),
            ("malformed", ~rows.numbers_ok, "a price or volume cell is not a number"),
            ("non_finite_price", ~finite, "a price is NaN or infinite"),
            ("non_positive_price", rows.prices[:, :4].min(axis=1) <= 0, "a price is zero or negative"),
            ("high_below_low", h < l, "high < low"),
            ("open_outside_range", (o < l) | (o > h), "open outside [low, high]"),
            ("close_outside_range", (c < l) | (c > h), "close outside [low, high]"),
            ("negative_volume", ~np.isfinite(v) | (v < 0), "volume negative or not finite"),
            ("non_session", ~rows.session_ok, "not when the venue trades (a holiday, a weekend, outside its hours)"),
            ("misaligned_timestamp", rows.ts % tf.ms != 0, f"not a multiple of {tf.name} from the epoch"),
            ("future_timestamp", rows.ts > now_ms, "starts after now"),
        ]
    failing = np.stack([mask for _, mask, _ in checks])
    first = np.where(failing.any(axis=0), failing.argmax(axis=0), -1)
    return first, checks


def check_series(rows: SeriesRows, tf: Timeframe, now_ms: int, source_file: str) -> CheckedSeries:
    """Refuse bad rows with their row number and reason; a date given twice with different values refuses every
    row of it (which one is right is not the importer's guess), given twice identically it is stored once."""
    first, checks = _reasons(rows, tf, now_ms)
    rejected = [_rejection(rows, i, checks[first[i]][0], checks[first[i]][2], source_file)
                for i in np.flatnonzero(first >= 0)]
    good = np.flatnonzero(first < 0)
    order = good[np.lexsort((rows.rows[good], rows.ts[good]))]
    ts, prices = rows.ts[order], rows.prices[order]
    if not len(ts):
        return CheckedSeries(ts, prices, rejected, 0)
    starts = np.concatenate(([True], ts[1:] != ts[:-1]))
    group = np.cumsum(starts) - 1
    leaders = np.flatnonzero(starts)
    differs = (prices != prices[leaders[group]]).any(axis=1)
    conflicted = np.zeros(len(leaders), bool)
    np.logical_or.at(conflicted, group, differs)
    bad = conflicted[group]
    for i in np.flatnonzero(bad):
        others = rows.rows[order][bad & (ts == ts[i])]
        rejected.append(_rejection(rows, order[i], "duplicate_timestamp",
                                   f"the same date in rows {', '.join(map(str, others[:10]))} with different values",
                                   source_file))
    keep = starts & ~bad
    repeats = int((~starts & ~bad).sum())
    rejected.sort(key=lambda r: r.source_row)
    return CheckedSeries(ts[keep], prices[keep], rejected, repeats)


def _rejection(rows: SeriesRows, i: int, reason: str, detail: str, source_file: str) -> Rejection:
    raw_ts = int(rows.ts[i]) if rows.date_ok[i] else None
    row = int(rows.rows[i])
    return Rejection(rows.cells(int(i)), raw_ts, reason, f"row {row}: {detail}", source_file, row)


def check_spacing(ts: np.ndarray, tf: Timeframe, label: str) -> None:
    """ImportRefused when the dates are not `tf` apart: no gap shorter, and the most common gap is `tf`.

    Longer gaps are normal (weekends, holidays, quiet hours: Friday to Monday is 3 days in a
    daily file); a shorter one means shorter bars, and a most common gap longer than `tf` longer
    bars, e.g. weekly data imported as 1d.
    """
    distinct = np.unique(ts)
    if len(distinct) < 2:
        return
    gaps = np.diff(distinct)
    shortest = int(gaps.min())
    if shortest < tf.ms:
        raise ImportRefused(f"{label}: bars {_span(shortest)} apart are shorter than the timeframe {tf.name}; "
                            "give the file's own timeframe with --timeframe")
    values, counts = np.unique(gaps, return_counts=True)
    common = int(values[counts.argmax()])
    if common != tf.ms:
        raise ImportRefused(f"{label}: the dates are mostly {_span(common)} apart, not {tf.name}; "
                            "give the file's own timeframe with --timeframe")


def _span(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms} ms"
