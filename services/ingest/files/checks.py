"""Row checks of an imported file, column-wise over all its symbols at once: the exchange path's rules plus dates,
sessions and duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from services.core.imports import ImportRefused
from services.core.timeframe import Timeframe
from services.ingest.validate import Rejection

__all__ = ["SeriesRows", "CheckedSeries", "check_series", "check_spacing"]


@dataclass
class SeriesRows:
    """A file's rows as columns: row numbers (1 = first after the header), symbol codes, instants, prices."""

    rows: np.ndarray          # int64
    codes: np.ndarray         # int64: the index of the row's symbol in `symbols`
    symbols: list[str]
    ts: np.ndarray            # int64 epoch ms (the session date for a calendar venue's daily bars)
    date_ok: np.ndarray       # bool: the date cell was read
    prices: np.ndarray        # float64 (n, 5): open, high, low, close, volume; NaN where unreadable
    numbers_ok: np.ndarray    # bool: every price and volume cell was read
    session_ok: np.ndarray    # bool: a session of the venue (all True for a 24/7 exchange or intraday bars)
    cells: Callable[[int], list] = field(repr=False, default=lambda i: [])  # row i's cells as read (rejected rows)

    def __len__(self) -> int:
        return len(self.rows)

    def counts(self) -> dict[str, int]:
        """Symbol → its rows in the file."""
        return dict(zip(self.symbols, np.bincount(self.codes, minlength=len(self.symbols)).tolist(), strict=True))


@dataclass
class CheckedSeries:
    """One symbol's rows to store, in ascending time, and the rows refused."""

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


def check_series(rows: SeriesRows, tf: Timeframe, now_ms: int, source_file: str) -> dict[str, CheckedSeries]:
    """Per symbol: refuse bad rows with their row number and reason; a date given twice with different values
    refuses every row of it (which one is right is not the importer's guess), given twice identically it is
    stored once.

    Column-wise over the whole file at once, symbols told apart by their code: a file of 400
    tickers costs one pass, not 400.
    """
    first, checks = _reasons(rows, tf, now_ms)
    refused = np.flatnonzero(first >= 0)
    rejected = [_rejection(rows, i, checks[first[i]][0], checks[first[i]][2], source_file) for i in refused]
    good = np.flatnonzero(first < 0)
    order = good[_symbol_time_order(rows.codes[good], rows.ts[good])]
    codes, ts, prices = rows.codes[order], rows.ts[order], rows.prices[order]
    starts = np.ones(len(ts), bool)
    starts[1:] = (ts[1:] != ts[:-1]) | (codes[1:] != codes[:-1])
    group = np.cumsum(starts) - 1
    bad = np.zeros(len(ts), bool)
    if not starts.all():  # some date is given twice: do its rows agree?
        leaders = np.flatnonzero(starts)
        differs = (prices != prices[leaders[group]]).any(axis=1)
        conflicted = np.zeros(len(leaders), bool)
        np.logical_or.at(conflicted, group, differs)
        bad = conflicted[group]
    rejected += _duplicates(rows, order[bad], group[bad], source_file)
    rejected_codes = np.concatenate((rows.codes[refused], rows.codes[order[bad]])).tolist()
    keep = starts & ~bad
    repeats = np.bincount(codes[~starts & ~bad], minlength=len(rows.symbols))
    bounds = np.searchsorted(codes[keep], np.arange(len(rows.symbols) + 1))
    kept_ts, kept_prices = ts[keep], prices[keep]
    by_symbol: list[list[Rejection]] = [[] for _ in rows.symbols]
    for rejection, code in zip(rejected, rejected_codes, strict=True):
        by_symbol[code].append(rejection)
    return {symbol: CheckedSeries(kept_ts[bounds[k]:bounds[k + 1]], kept_prices[bounds[k]:bounds[k + 1]],
                                  sorted(by_symbol[k], key=lambda r: r.source_row), int(repeats[k]))
            for k, symbol in enumerate(rows.symbols)}


def _symbol_time_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The indices putting rows in (symbol, time) order, ties in file order; no sort for a file already in it
    (a vendor file symbol by symbol, dates ascending: the usual shape)."""
    if len(ts) < 2:
        return np.arange(len(ts))
    step = np.diff(codes)
    if (step >= 0).all() and ((step > 0) | (np.diff(ts) >= 0)).all():
        return np.arange(len(ts))
    return np.lexsort((ts, codes))  # stable: equal keys keep their order


def _duplicates(rows: SeriesRows, bad: np.ndarray, group: np.ndarray, source_file: str) -> list[Rejection]:
    """Each row of a date given with different values, naming the others rows of that date (the first ten)."""
    if not len(bad):
        return []
    cuts = np.flatnonzero(np.diff(group)) + 1
    out = []
    for members in np.split(bad, cuts):
        numbers = ", ".join(map(str, rows.rows[members[:10]].tolist()))
        out += [_rejection(rows, i, "duplicate_timestamp", f"the same date in rows {numbers} with different values",
                           source_file) for i in members]
    return out


def _rejection(rows: SeriesRows, i: int, reason: str, detail: str, source_file: str) -> Rejection:
    raw_ts = int(rows.ts[i]) if rows.date_ok[i] else None
    row = int(rows.rows[i])
    return Rejection(rows.cells(int(i)), raw_ts, reason, f"row {row}: {detail}", source_file, row)


def check_spacing(rows: SeriesRows, tf: Timeframe, name: str) -> None:
    """ImportRefused when a symbol's dates are not `tf` apart: no gap shorter, and the most common gap is `tf`.

    Longer gaps are normal (weekends, holidays, quiet hours: Friday to Monday is 3 days in a
    daily file); a shorter one means shorter bars, and a most common gap longer than `tf` longer
    bars, e.g. weekly data imported as 1d. The first symbol of the file that fails is named.
    """
    codes, ts = rows.codes[rows.date_ok], rows.ts[rows.date_ok]
    order = _symbol_time_order(codes, ts)
    codes, ts = codes[order], ts[order]
    distinct = np.ones(len(ts), bool)
    distinct[1:] = (ts[1:] != ts[:-1]) | (codes[1:] != codes[:-1])
    codes, ts = codes[distinct], ts[distinct]
    within = codes[1:] == codes[:-1]  # a gap between two dates of one symbol
    gap_codes, gaps = codes[1:][within], np.diff(ts)[within]
    if not len(gaps):
        return
    # Each symbol's (gap, how often) runs, most frequent first, the shorter gap first on a tie (as np.unique).
    order = np.lexsort((gaps, gap_codes))
    gap_codes, gaps = gap_codes[order], gaps[order]
    run = np.ones(len(gaps), bool)
    run[1:] = (gaps[1:] != gaps[:-1]) | (gap_codes[1:] != gap_codes[:-1])
    run_starts = np.flatnonzero(run)
    run_counts = np.diff(np.append(run_starts, len(gaps)))
    run_codes, run_gaps = gap_codes[run_starts], gaps[run_starts]
    ranked = np.lexsort((run_gaps, -run_counts, run_codes))
    firsts = ranked[np.concatenate(([True], run_codes[ranked][1:] != run_codes[ranked][:-1]))]
    shortest = np.minimum.reduceat(gaps, np.flatnonzero(np.concatenate(([True], gap_codes[1:] != gap_codes[:-1]))))
    for code, common, short in zip(run_codes[firsts].tolist(), run_gaps[firsts].tolist(), shortest.tolist(),
                                   strict=True):
        label = f"{name} {rows.symbols[code]}"
        if short < tf.ms:
            raise ImportRefused(f"{label}: bars {_span(short)} apart are shorter than the timeframe {tf.name}; "
                                "give the file's own timeframe with --timeframe")
        if common != tf.ms:
            raise ImportRefused(f"{label}: the dates are mostly {_span(common)} apart, not {tf.name}; "
                                "give the file's own timeframe with --timeframe")


def _span(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms} ms"
