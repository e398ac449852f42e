"""Rows per second of the idempotent candle write path (upsert_candle_batch) next to plain COPY of the same rows.

Starts its own PostgreSQL (tests.utils.servers), migrates it and writes `--calls`
batches of `--instruments` × `--bars` hourly candles, each batch in its own
transaction as a sync writes them. Measured side by side in one run, each phase
on the same `candles` table (emptied where the phase needs it empty):

  copy           plain text COPY of the pre-serialized rows into the empty table: the anchor
  copy binary    the same in binary COPY format (what the write path's COPY uses): a stricter anchor
  new            upsert_candle_batch of the same rows into the empty table
  conflicting    upsert_candle_batch of the same rows again, as a re-fetch writes them
  textbook *     the COPY → staging → INSERT … ON CONFLICT path upsert_candle_batch used to be

The goal is ≥ 0.8 of COPY's rows per second for `new` and `conflicting` (floor 0.5).
Phases run `--repeats` times interleaved; each figure is the median over the repeats,
and each ratio the median of the repeats' own ratios (a repeat's phases ran seconds
apart, so they shared the machine's load of the moment).

    .venv/bin/python bench/ingest.py [--instruments 50] [--bars 500] [--calls 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main"]

GOAL = 0.8
FLOOR = 0.5
H = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
TIMEFRAME = "1h"
COLUMNS = ("instrument_id", "timeframe", "ts", "open", "high", "low", "close", "volume", "is_closed")


def make_batches(instruments: int, bars: int, calls: int, seed: int = 7) -> list[list[tuple]]:
    """`calls` consecutive windows of `bars` bars for each instrument; prices with exchange-like decimals.

    Every bar is closed but the newest one of each instrument (the last batch's last bar).
    """
    rng = random.Random(seed)
    price = {i: rng.uniform(1, 50_000) for i in range(1, instruments + 1)}
    batches = []
    for call in range(calls):
        rows = []
        for i in range(1, instruments + 1):
            for b in range(bars):
                n = call * bars + b
                o = price[i]
                c = max(0.01, o * (1 + rng.gauss(0, 0.01)))
                h, l = max(o, c) * (1 + rng.random() * 0.005), min(o, c) * (1 - rng.random() * 0.005)
                price[i] = c
                closed = not (call == calls - 1 and b == bars - 1)
                rows.append((i, START_MS + n * H, round(o, 2), round(h, 2), round(l, 2), round(c, 2),
                             round(rng.uniform(0, 5_000), 5), closed))
        batches.append(rows)
    return batches


def serialize(rows: list[tuple]) -> bytes:
    """COPY text of rows as the database stores them, made outside the timed part."""
    from services.core.store.bulk import _cell
    from services.core.timeparse import ms_to_datetime

    out = io.StringIO()
    for i, ts, o, h, l, c, v, closed in rows:
        out.write("\t".join(_cell(x) for x in (i, TIMEFRAME, ms_to_datetime(ts), o, h, l, c, v, closed)) + "\n")
    return out.getvalue().encode()


def serialize_binary(rows: list[tuple]) -> bytes | None:
    """Binary COPY of rows, made outside the timed part; None where the write path has no binary COPY."""
    try:
        from services.ingest.store import _CandleColumns
    except ImportError:
        return None
    return _CandleColumns.of(rows).binary_copy(TIMEFRAME)


def textbook(conn, timeframe: str, rows) -> int:
    """The path upsert_candle_batch took before ADR 0018: every row through staging and ON CONFLICT."""
    from services.core.store.bulk import copy_upsert
    from services.core.timeparse import ms_to_datetime

    return copy_upsert(
        conn, "candles", COLUMNS, ("instrument_id", "timeframe", "ts"),
        ((i, timeframe, ms_to_datetime(ts), o, h, l, c, v, closed) for i, ts, o, h, l, c, v, closed in rows),
        update=("open", "high", "low", "close", "volume", "is_closed"), update_where="NOT t.is_closed",
        stamp="updated_at")


def empty(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("TRUNCATE candles"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE candles"))


def timed(engine, batches: list, write: Callable) -> tuple[float, int]:
    """Seconds to write every batch, each in its own transaction, and the rows the writes reported."""
    written = 0
    started = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            written += write(conn, batch)
    return time.perf_counter() - started, written


def new_then_conflicting(engine, batches: list, upsert: Callable, total: int) -> tuple[float, float]:
    """Seconds for an upsert path to write every row into an empty table, then the same rows again."""
    seconds_new, written = timed(engine, batches, lambda conn, rows: upsert(conn, TIMEFRAME, rows))
    assert written == total, (written, total)
    seconds_again, written = timed(engine, batches, lambda conn, rows: upsert(conn, TIMEFRAME, rows))
    assert written == 0, written
    return seconds_new, seconds_again


def copy_write(conn, buffer: bytes, options: str = "") -> int:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY candles ({', '.join(COLUMNS)}) FROM STDIN{options}", io.BytesIO(buffer),
                           size=1 << 20)
        return cursor.rowcount
    finally:
        cursor.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--bars", type=int, default=500, help="bars per instrument in one call")
    parser.add_argument("--calls", type=int, default=8, help="batches written, each in its own transaction")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-textbook", action="store_true", help="skip the old staging-only path")
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    from services.core.migrate import upgrade_database
    from services.ingest.store import upsert_candle_batch
    from tests.utils.servers import postgres_server

    batches = make_batches(args.instruments, args.bars, args.calls)
    total = sum(len(b) for b in batches)
    buffers = [serialize(b) for b in batches]
    binaries = [serialize_binary(b) for b in batches]
    with postgres_server() as url:
        upgrade_database(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("""INSERT INTO instruments (id, exchange, symbol, timeframes)
                SELECT n, 'bench', 'SYM' || n || '/USD', ARRAY['1h'] FROM generate_series(1, :n) n"""),
                         {"n": args.instruments})
        phases = {name: [] for name in ("copy", "copy binary", "new", "conflicting", "textbook new",
                                        "textbook conflicting")}
        for _ in range(args.repeats):
            empty(engine)
            seconds, copied = timed(engine, buffers, copy_write)
            assert copied == total, (copied, total)
            phases["copy"].append(seconds)
            if binaries[0] is not None:
                empty(engine)
                seconds, copied = timed(engine, binaries, lambda conn, data: copy_write(conn, data, " (FORMAT binary)"))
                assert copied == total, (copied, total)
                phases["copy binary"].append(seconds)
            paths = [("", upsert_candle_batch)] + ([] if args.no_textbook else [("textbook ", textbook)])
            for prefix, upsert in paths:
                empty(engine)
                new, again = new_then_conflicting(engine, batches, upsert, total)
                phases[f"{prefix}new"].append(new)
                phases[f"{prefix}conflicting"].append(again)
        engine.dispose()

    print(f"{args.calls} calls × {args.instruments} instruments × {args.bars} bars = {total} rows per phase, "
          f"{args.repeats} repeats")
    ok = report(phases, total)
    if not ok:
        sys.exit(1)


def report(phases: dict[str, list[float]], total: int) -> bool:
    """Print each phase's rows/s and ratios to both COPY anchors; False when the write path is below the floor."""
    anchors = [name for name in ("copy", "copy binary") if phases[name]]
    print(f"  {'phase':<21} {'rows/s':>10}  " + "  ".join(f"{'÷ ' + a:>13}" for a in anchors) + "  runs (s)")
    verdicts = []
    for name, times in phases.items():
        if not times:
            continue
        ratios = [statistics.median(a / t for a, t in zip(phases[anchor], times, strict=True)) for anchor in anchors]
        note = ""
        if not name.startswith("copy"):
            ratio = ratios[0]
            note = "goal met" if ratio >= GOAL else ("above the floor, goal missed" if ratio >= FLOOR
                                                     else "BELOW THE FLOOR")
            if not name.startswith("textbook"):
                verdicts.append(ratio >= FLOOR)
        print(f"  {name:<21} {total / statistics.median(times):>10,.0f}  "
              + "  ".join(f"{r:>13.2f}" for r in ratios) + f"  {', '.join(f'{t:.2f}' for t in times)}  {note}")
    print(f"  goal ≥ {GOAL} of COPY (the text anchor), floor {FLOOR}")
    return all(verdicts)


if __name__ == "__main__":
    main()
