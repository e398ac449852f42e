"""Rows per second of `candleflow import` for a 1M-row CSV, against binary COPY of the same rows into `candles`.

Starts its own PostgreSQL (tests.utils.servers), migrates it, and writes a vendor-shaped daily
CSV: `--symbols` XNYS tickers (a Symbol column) over every XNYS session from 2016 on, until
`--rows` rows. Side by side in one run, `--repeats` rounds interleaved, each way on an emptied
database (medians printed; a ratio is the median of each round's own):

  import         parse_file + record_import: read, recognise, parse dates, stamp sessions against
                 the real XNYS calendar, check every row, add the instruments, write the candles
                 and finish the import run, in one transaction
  candles COPY   the anchor: the rows the import stores, binary-COPYed straight into `candles`
                 (after the instruments exist; nothing read, parsed, checked or encoded in the
                 timing). The rows an import stores are candles rows, so "plain COPY of the same
                 rows" is a COPY into the table they land in, with its primary key, the foreign key
                 to instruments and its partitions
  candles COPY/c the same in statements of the import's chunk size (100,000 rows); the anchor is
                 the faster of the two shapes, so the import's chunking is not counted as its gain
  scratch COPY   COPY … FROM STDIN (FORMAT csv, HEADER) of the same file into a keyless scratch
                 table of text, date and double precision columns: the floor no keyed write can
                 reach, printed beside the anchor, not as it

and, for scale, `import again`: the same file imported a second time onto the first import's
rows (the write path's stored-row read; nothing may change).

Every way must leave as many rows as the file has, or the script fails. The goal is import ≥ 0.5 ×
the anchor (aim 0.75); the verdict line says which.

    python bench/imports.py [--rows 1000000] [--symbols 400] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main"]


def make_csv(rows: int, symbols: int, seed: int = 11) -> bytes:
    """A daily file of `symbols` tickers over XNYS sessions, `rows` rows, random-walk prices with two decimals."""
    from services.core.venues import trading_calendar

    sessions = trading_calendar("XNYS").sessions
    days = [d.strftime("%Y-%m-%d") for d in sessions[sessions >= "2016-01-01"]][: -(-rows // symbols)]
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("Symbol,Date,Open,High,Low,Close,Adj Close,Volume\n")
    written = 0
    for n in range(symbols):
        ticker = f"T{n:04d}"
        price = rng.uniform(5, 500)
        for day in days:
            if written == rows:
                break
            o = price
            c = max(0.5, o * (1 + rng.gauss(0, 0.015)))
            h, l = max(o, c) * (1 + rng.random() * 0.01), min(o, c) * (1 - rng.random() * 0.01)
            price = c
            out.write(f"{ticker},{day},{o:.2f},{h:.2f},{l:.2f},{c:.2f},{c:.2f},{rng.randint(1000, 9_000_000)}\n")
            written += 1
    return out.getvalue().encode()


def _empty(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("TRUNCATE candles, rejected_candles, instruments, pipeline_runs RESTART IDENTITY CASCADE"))
        conn.execute(text("DROP TABLE IF EXISTS copy_scratch"))


def _count(engine, table: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # nosec B608 - our own names


def _import_once(engine, data: bytes) -> tuple[float, int]:
    """(seconds, candles stored) of one import of `data`."""
    from services.core.imports import ImportOptions
    from services.ingest.files.importing import record_import
    from services.ingest.files.reading import parse_file

    options = ImportOptions("XNYS", "1d")
    start = time.perf_counter()
    now_ms = int(time.time() * 1000)
    parsed = parse_file(data, "bench.csv", options, now_ms)
    with engine.begin() as conn:
        reports = record_import(conn, str(uuid.uuid4()), parsed, options, now_ms)
    return time.perf_counter() - start, sum(r.stored for r in reports)


def time_import(engine, data: bytes) -> tuple[float, int]:
    seconds, stored = _import_once(engine, data)
    count = _count(engine, "candles")
    return seconds, count if stored == count else -stored


def time_reimport(engine, data: bytes) -> tuple[float, int]:
    """The same file onto the first import's rows: every bar unchanged, none stored."""
    _import_once(engine, data)
    seconds, stored = _import_once(engine, data)
    return seconds, _count(engine, "candles") if stored == 0 else -stored


def time_scratch_copy(engine, data: bytes) -> tuple[float, int]:
    from sqlalchemy import text

    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE copy_scratch (symbol text, date date, open double precision, "
                          "high double precision, low double precision, close double precision, "
                          "adj_close double precision, volume double precision)"))
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.copy_expert("COPY copy_scratch FROM STDIN (FORMAT csv, HEADER)", io.BytesIO(data), size=1 << 20)
        cursor.close()
    seconds = time.perf_counter() - start
    return seconds, _count(engine, "copy_scratch")


def time_candles_copy(engine, data: bytes, chunk_rows: int | None = None) -> tuple[float, int]:
    """The file's rows as the import stores them, binary-COPYed into candles: one statement, or `chunk_rows` each."""
    import numpy as np

    from services.core.imports import ImportOptions
    from services.core.store.bulk import copy_from
    from services.core.store.instruments import insert_instrument
    from services.ingest.files.reading import parse_file
    from services.ingest.store import _CANDLE_COLUMNS, binary_candles

    parsed = parse_file(data, "bench.csv", ImportOptions("XNYS", "1d"), int(time.time() * 1000))
    ids = []
    with engine.begin() as conn:
        for symbol, checked in parsed.series.items():
            instrument_id = insert_instrument(conn, "XNYS", symbol, ["1d"], "import")["id"]
            ids.append(np.full(len(checked.ts), instrument_id, np.int32))
    ts = np.concatenate([checked.ts for checked in parsed.series.values()])
    chunk_rows = chunk_rows or len(ts)
    prices = np.concatenate([checked.prices for checked in parsed.series.values()])
    ids, closed = np.concatenate(ids), np.ones(len(ts), bool)
    payloads = [binary_candles("1d", ids[part], ts[part], prices[part].T, closed[part])
                for part in (slice(start, start + chunk_rows) for start in range(0, len(ts), chunk_rows))]
    start = time.perf_counter()
    with engine.begin() as conn:
        for payload in payloads:
            copy_from(conn, "candles", _CANDLE_COLUMNS, payload, binary=True)
    seconds = time.perf_counter() - start
    return seconds, _count(engine, "candles")


def time_candles_copy_chunked(engine, data: bytes) -> tuple[float, int]:
    """As time_candles_copy, in statements of the import's chunk size: the server's share of the import's write."""
    from services.ingest.files.storing import CHUNK_ROWS

    return time_candles_copy(engine, data, CHUNK_ROWS)


WAYS = {"import": time_import, "candles COPY": time_candles_copy, "candles COPY/c": time_candles_copy_chunked,
        "scratch COPY": time_scratch_copy, "import again": time_reimport}
GOAL, AIM = 0.5, 0.75


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every way, interleaved; medians shown")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.symbols < 1 or args.repeats < 1:
        parser.error("--rows, --symbols and --repeats must be at least 1")

    from sqlalchemy import create_engine

    from services.core.migrate import upgrade_database
    from services.core.venues import trading_calendar
    from tests.utils.servers import postgres_server

    data = make_csv(args.rows, args.symbols)
    print(f"{args.rows:,} rows, {args.symbols} symbols, {len(data) / 1e6:.1f} MB of CSV, {args.repeats} rounds")
    trading_calendar("XNYS")  # loaded once per process (about a second), as by any import before it
    seconds: dict[str, list[float]] = {name: [] for name in WAYS}
    with postgres_server() as url:
        upgrade_database(url)
        engine = create_engine(url)
        for _ in range(args.repeats):
            for name, way in WAYS.items():
                _empty(engine)
                took, count = way(engine, data)
                if count != args.rows:
                    print(f"FAILED: {name} left {count:,} rows; expected {args.rows:,}")
                    return 1
                seconds[name].append(took)
        engine.dispose()
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"{'way':14} {'seconds':>8} {'rows/s':>10}  rounds")
    for name, took in median.items():
        print(f"{name:14} {took:8.2f} {args.rows / took:10,.0f}  {' '.join(f'{s:.2f}' for s in seconds[name])}")
    # Ratios are the median of each round's own (ways next to each other in time share the machine's
    # load); the anchor is the round's faster shape of the COPY into candles, so the import's own
    # chunking is not counted as its gain.
    anchors = [min(one, chunked) / imported for one, chunked, imported
               in zip(seconds["candles COPY"], seconds["candles COPY/c"], seconds["import"], strict=True)]
    floors = [scratch / imported for scratch, imported in zip(seconds["scratch COPY"], seconds["import"], strict=True)]
    anchor, floor = statistics.median(anchors), statistics.median(floors)
    print(f"import / candles COPY (the anchor: the same rows into the table they land in, the faster of one "
          f"statement and chunks) = {anchor:.2f}  rounds {' '.join(f'{r:.2f}' for r in anchors)}")
    print(f"import / scratch COPY (the floor: the same file into a keyless table, not the anchor) = {floor:.2f}  "
          f"rounds {' '.join(f'{r:.2f}' for r in floors)}")
    verdict = "PASS" if anchor >= GOAL else "FAIL"
    print(f"{verdict}: import at {anchor:.2f} of the anchor, goal >= {GOAL} (aim {AIM}: "
          f"{'reached' if anchor >= AIM else 'not reached'})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
