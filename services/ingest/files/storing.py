"""Writing a checked file: its instruments into the universe, its bars (COPYed straight for an instrument it adds,
through the candle write path for one already held), its refusals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection

from services.core.imports import ImportOptions, ImportRefused
from services.core.store.instruments import insert_instrument, read_instrument, read_instruments
from services.core.timeframe import Timeframe
from services.ingest.files.reading import ParsedFile
from services.ingest.store import copy_candle_columns, store_rejections, upsert_candle_batch

__all__ = ["SeriesReport", "check_instruments", "store_file", "CHUNK_ROWS", "INSTRUMENT_SOURCE"]

# Rows per write: the progress bar moves per chunk, one chunk's stored-span read stays small, and
# its COPY payload (69 bytes a row) stays a few MB.
CHUNK_ROWS = 100_000
INSTRUMENT_SOURCE = "import"


@dataclass
class SeriesReport:
    """One instrument's counts, as the run's stage entry shows them."""

    symbol: str
    timeframe: str
    rows_read: int
    stored: int = 0
    unchanged: int = 0
    repeats: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    added: bool = False

    def entry(self) -> dict:
        """The run's stage entry for this instrument (GET /api/runs/<id>)."""
        return {"stage": "import", "status": "ok", "rows_read": self.rows_read, "stored": self.stored,
                "unchanged": self.unchanged, "repeats": self.repeats, "rejected": sum(self.rejected.values()),
                "rejected_by_reason": dict(sorted(self.rejected.items())), "added_to_universe": self.added}


def check_instruments(conn: Connection, parsed: ParsedFile, options: ImportOptions) -> dict[str, dict | None]:
    """Each symbol's instrument row (None: new); ImportRefused for one kept in other timeframes than the import's."""
    # One read of the venue's universe, not one per symbol: a file may name hundreds.
    held = {row["symbol"]: row for row in read_instruments(conn, exchange=options.exchange)}
    existing = {symbol: held.get(symbol) for symbol in parsed.series}
    for symbol, row in existing.items():
        _check_timeframe(symbol, row, options)
    return existing


def _check_timeframe(symbol: str, row: dict | None, options: ImportOptions) -> None:
    if row is not None and options.timeframe not in row["timeframes"]:
        raise ImportRefused(f"{symbol} on {options.exchange} is kept in {','.join(row['timeframes'])}, "
                            f"not {options.timeframe}: import its {row['timeframes'][0]} bars, or add "
                            f"{options.timeframe} to it first (candleflow instruments set)")


def store_file(conn: Connection, parsed: ParsedFile, options: ImportOptions, now_ms: int,
               progress: Callable[[int], None] | None = None) -> list[SeriesReport]:
    """Write `parsed` on `conn`'s transaction; ImportRefused, before any write, for an instrument kept in other
    timeframes. Stored bars are those inserted or replaced; the rest of the good rows were already there."""
    timeframe = options.timeframe
    existing = check_instruments(conn, parsed, options)
    reports, added, held = [], [], []
    for symbol, checked in parsed.series.items():
        report = SeriesReport(symbol, timeframe, parsed.rows_per_symbol[symbol], repeats=checked.repeats,
                              rejected=dict(Counter(r.reason for r in checked.rejected)))
        row = existing[symbol]
        if row is None:
            row = insert_instrument(conn, options.exchange, symbol, [timeframe], INSTRUMENT_SOURCE)
            report.added = row is not None
            # None: another session added it since the check, and committed; it may hold bars already.
            if row is None:
                row = read_instrument(conn, options.exchange, symbol)
                _check_timeframe(symbol, row, options)  # that session may keep it in another timeframe
        (added if report.added else held).append((report, row["id"], checked))
        store_rejections(conn, row["id"], timeframe, checked.rejected)
        reports.append(report)
    # Closed bars are immutable in candles; the bar still open at `now` may be replaced by a later import.
    closed_before = now_ms - Timeframe.parse(timeframe).ms
    _copy_added(conn, timeframe, added, closed_before, progress)
    _upsert_held(conn, timeframe, held, closed_before, progress)
    for report, _, checked in added + held:
        report.unchanged = len(checked.ts) - report.stored
        if progress:
            progress(len(checked.rejected) + checked.repeats)
    return reports


def _copy_added(conn: Connection, timeframe: str, added: list, closed_before: int,
                progress: Callable[[int], None] | None) -> None:
    """The bars of instruments this transaction added, COPYed straight into candles in chunks.

    No stored-row check, no savepoint: none can be stored yet, and no other session can write
    them before this transaction commits (until then the instrument row, and so its id, is this
    transaction's alone: another insert of the same symbol waits on it).
    """
    if not added:
        return
    ids = np.concatenate([np.full(len(checked.ts), instrument_id, np.int32) for _, instrument_id, checked in added])
    ts = np.concatenate([checked.ts for *_, checked in added])
    prices = np.concatenate([checked.prices for *_, checked in added])
    for start in range(0, len(ts), CHUNK_ROWS):
        part = slice(start, start + CHUNK_ROWS)
        copied = copy_candle_columns(conn, timeframe, ids[part], ts[part], prices[part].T, ts[part] <= closed_before)
        if progress:
            progress(copied)
    for report, _, checked in added:
        report.stored = len(checked.ts)


def _upsert_held(conn: Connection, timeframe: str, held: list, closed_before: int,
                 progress: Callable[[int], None] | None) -> None:
    """The bars of instruments already held, through the candle write path: it reads what is stored and writes
    only new bars and open ones that changed, so importing twice changes nothing."""
    for report, instrument_id, checked in held:
        columns = [checked.ts.tolist(), *(checked.prices[:, k].tolist() for k in range(5)),
                   (checked.ts <= closed_before).tolist()]
        for start in range(0, len(checked.ts), CHUNK_ROWS):
            chunk = [(instrument_id, *values) for values in zip(*(c[start:start + CHUNK_ROWS] for c in columns),
                                                                strict=True)]
            report.stored += upsert_candle_batch(conn, timeframe, chunk)
            if progress:
                progress(len(chunk))
