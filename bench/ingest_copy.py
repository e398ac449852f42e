"""Rows per second of serializing and COPYing candles: our COPY text (bulk._cell) against psycopg 3's write_row.

Starts its own PostgreSQL (tests.utils.servers), migrates it, and COPYs the same `--rows`
candle rows (instrument_id, timeframe, ts, open, high, low, close, volume, is_closed) into a
temporary table LIKE candles, the way copy_upsert stages them. Serializing is part of the
timed work, because serializing is where the two ways differ. Ways, interleaved `--repeats`
times, medians reported:

  ours / psycopg2      _cell per value, lines into a StringIO, copy_expert: what copy_upsert does
  ours / psycopg 3     the same text, sent with psycopg 3's copy.write: the driver alone
  write_row text       psycopg 3 cursor.copy(...).write_row(row): psycopg adapts every value
  write_row binary     the same in FORMAT BINARY with set_types: no text at all

For scale, the last line times the whole of copy_upsert for the same rows (staging COPY plus
INSERT … ON CONFLICT into an empty candles table), the way a backfill writes them.

Every way has to leave the same rows behind (count, sums, closed count, time range), or the
script fails. psycopg 3 is not a project dependency. Run the script in a venv that has it
(`pip install 'psycopg[binary]'`); without psycopg 3 only the first way runs.

    python bench/ingest_copy.py [--rows 200000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main"]

COLUMNS = ("instrument_id", "timeframe", "ts", "open", "high", "low", "close", "volume", "is_closed")
COPY_SQL = f"COPY stage_candles ({', '.join(COLUMNS)}) FROM STDIN"
CHECK_SQL = """SELECT count(*), round(sum(open)::numeric, 2), round(sum(volume)::numeric, 5),
                      count(*) FILTER (WHERE is_closed), min(ts), max(ts), count(DISTINCT timeframe)
                 FROM stage_candles"""
START = datetime(2024, 1, 1, tzinfo=UTC)


def make_rows(count: int, instruments: int = 50, seed: int = 7) -> list[tuple]:
    """Hourly candles of `instruments` instruments with exchange-like decimals; each one's newest bar is open."""
    rng = random.Random(seed)
    bars = -(-count // instruments)
    rows = []
    for instrument in range(1, instruments + 1):
        price = rng.uniform(1, 50_000)
        for bar in range(bars):
            o = price
            c = max(0.01, o * (1 + rng.gauss(0, 0.01)))
            h, l = max(o, c) * (1 + rng.random() * 0.005), min(o, c) * (1 - rng.random() * 0.005)
            price = c
            rows.append((instrument, "1h", START + timedelta(hours=bar), round(o, 2), round(h, 2), round(l, 2),
                         round(c, 2), round(rng.uniform(0, 5_000), 5), bar != bars - 1))
    return rows[:count]


def ours_text(rows: list[tuple]) -> io.StringIO:
    """The COPY text copy_upsert builds (the same loop over bulk._cell)."""
    from services.core.store.bulk import _cell

    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_cell(value) for value in row) + "\n")
    buffer.seek(0)
    return buffer


def ours_psycopg2(cursor, rows: list[tuple]) -> None:
    cursor.copy_expert(COPY_SQL, ours_text(rows))


def ours_psycopg3(cursor, rows: list[tuple]) -> None:
    with cursor.copy(COPY_SQL) as copy:
        copy.write(ours_text(rows).getvalue())


def write_row_text(cursor, rows: list[tuple]) -> None:
    with cursor.copy(COPY_SQL) as copy:
        for row in rows:
            copy.write_row(row)


def write_row_binary(cursor, rows: list[tuple]) -> None:
    with cursor.copy(COPY_SQL + " (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "text", "timestamptz", "float8", "float8", "float8", "float8", "float8", "bool"])
        for row in rows:
            copy.write_row(row)


def timed(connect: Callable, way: Callable, rows: list[tuple]) -> tuple[float, tuple]:
    """Seconds to serialize and COPY `rows` into a fresh staging table, and what the table then holds."""
    conn = connect()  # closed explicitly: psycopg2's `with` only ends the transaction
    try:
        cursor = conn.cursor()
        cursor.execute("CREATE TEMP TABLE stage_candles (LIKE candles INCLUDING DEFAULTS) ON COMMIT DROP")
        started = time.perf_counter()
        way(cursor, rows)
        seconds = time.perf_counter() - started
        cursor.execute(CHECK_SQL)
        held = tuple(cursor.fetchone())
        conn.rollback()
    finally:
        conn.close()
    return seconds, held


def whole_upserts(url: str, rows: list[tuple], repeats: int) -> list[float]:
    """Seconds of copy_upsert writing `rows` into an empty candles table, once per repeat."""
    from sqlalchemy import create_engine, text

    from services.core.store.bulk import copy_upsert

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO instruments (id, exchange, symbol, timeframes)
            SELECT n, 'bench', 'SYM' || n || '/USD', ARRAY['1h'] FROM generate_series(1, :n) n"""),
                     {"n": max(row[0] for row in rows)})
    times = []
    for _ in range(repeats):
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE candles"))
        with engine.begin() as conn:
            started = time.perf_counter()
            written = copy_upsert(conn, "candles", COLUMNS, ("instrument_id", "timeframe", "ts"), rows,
                                  update=("open", "high", "low", "close", "volume", "is_closed"),
                                  update_where="NOT t.is_closed", stamp="updated_at")
            times.append(time.perf_counter() - started)
        assert written == len(rows), (written, len(rows))
    engine.dispose()
    return times


def seconds_of(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import psycopg2

    from services.core.migrate import upgrade_database
    from tests.utils.servers import postgres_server

    try:
        import psycopg
    except ImportError:
        psycopg = None
        print("psycopg 3 is not installed here: only our encoding runs (pip install 'psycopg[binary]')")

    rows = make_rows(args.rows)
    with postgres_server() as url:
        upgrade_database(url)
        upsert_s = whole_upserts(url, rows, args.repeats)
        dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
        ways = {"ours / psycopg2": (lambda: psycopg2.connect(dsn), ours_psycopg2)}
        if psycopg is not None:
            ways |= {"ours / psycopg 3": (lambda: psycopg.connect(dsn), ours_psycopg3),
                     "write_row text": (lambda: psycopg.connect(dsn), write_row_text),
                     "write_row binary": (lambda: psycopg.connect(dsn), write_row_binary)}
        runs: dict[str, list[float]] = {name: [] for name in ways}
        held: dict[str, tuple] = {}
        for _ in range(args.repeats):
            for name, (connect, way) in ways.items():
                seconds, held[name] = timed(connect, way, rows)
                runs[name].append(seconds)

    reference = held["ours / psycopg2"]
    for name, result in held.items():
        if result != reference:
            sys.exit(f"{name} left different rows: {result} != {reference}")
    versions = f"psycopg2 {psycopg2.__version__.split()[0]}"
    if psycopg is not None:
        versions += f", psycopg {psycopg.__version__} (libpq wrapper: {psycopg.pq.__impl__})"
    print(f"{len(rows):,} candle rows serialized and COPYed into a temp table LIKE candles, median of "
          f"{args.repeats}; {versions}")
    base = len(rows) / statistics.median(runs["ours / psycopg2"])
    for name, times in runs.items():
        rate = len(rows) / statistics.median(times)
        print(f"  {name:<17} {rate:>10,.0f} rows/s  {rate / base:5.2f}× ours/psycopg2  "
              f"(runs {', '.join(f'{t:.3f}' for t in times)} s)")
    serialize = min(seconds_of(lambda: ours_text(rows)) for _ in range(3))
    print(f"  our serialization alone      {len(rows) / serialize:>10,.0f} rows/s  (best of 3, {serialize:.3f} s)")
    upsert = statistics.median(upsert_s)
    print(f"  whole copy_upsert (ours)     {len(rows) / upsert:>10,.0f} rows/s  "
          f"(runs {', '.join(f'{t:.3f}' for t in upsert_s)} s)")


if __name__ == "__main__":
    main()
