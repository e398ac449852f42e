"""Rows per second of `candleflow import` for a 1M-row CSV, against plain COPY of the same rows (the anchor).

Starts its own PostgreSQL (tests.utils.servers), migrates it, and writes a vendor-shaped daily
CSV: `--symbols` XNYS tickers (a Symbol column) over every XNYS session from 2016 on, until
`--rows` rows. Two ways, side by side in one run, on an empty database each time:

  import   parse_file + record_import: read, recognise, parse dates, stamp sessions against the
           real XNYS calendar, check every row, add the instruments, write the candles through
           upsert_candle_batch and finish the import run, in one transaction
  COPY     COPY … FROM STDIN (FORMAT csv, HEADER) of the same file into a scratch table of
           (symbol text, date date, open, high, low, close, volume double precision): the
           server parsing the same text, nothing checked, nothing keyed

For scale, a third line: the rows the import stored, binary-COPYed straight into `candles` (after
the instruments exist; nothing read, parsed or checked). That is the floor of any write into
that table: its primary key and the foreign key to instruments are maintained row by row, which
the scratch table is spared.

Every way must leave as many rows as the file has, or the script fails. The goal is import ≥ 0.5 × COPY.

    python bench/imports.py [--rows 1000000] [--symbols 400]
"""

from __future__ import annotations

import argparse
import io
import random
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


def time_import(engine, data: bytes) -> tuple[float, int]:
    from sqlalchemy import text

    from services.core.imports import ImportOptions
    from services.ingest.files.importing import record_import
    from services.ingest.files.reading import parse_file

    options = ImportOptions("XNYS", "1d")
    start = time.perf_counter()
    now_ms = int(time.time() * 1000)
    parsed = parse_file(data, "bench.csv", options, now_ms)
    with engine.begin() as conn:
        record_import(conn, str(uuid.uuid4()), parsed, options, now_ms)
    seconds = time.perf_counter() - start
    with engine.connect() as conn:
        return seconds, conn.execute(text("SELECT count(*) FROM candles")).scalar_one()


def time_copy(engine, data: bytes) -> tuple[float, int]:
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
    with engine.connect() as conn:
        return seconds, conn.execute(text("SELECT count(*) FROM copy_scratch")).scalar_one()


def time_candles_copy(engine, data: bytes) -> tuple[float, int]:
    from sqlalchemy import text

    from services.core.imports import ImportOptions
    from services.core.store.bulk import copy_from
    from services.core.store.instruments import insert_instrument
    from services.ingest.files.reading import parse_file
    from services.ingest.store import _CANDLE_COLUMNS, _CandleColumns

    parsed = parse_file(data, "bench.csv", ImportOptions("XNYS", "1d"), int(time.time() * 1000))
    rows = []
    with engine.begin() as conn:
        for symbol, checked in parsed.series.items():
            instrument_id = insert_instrument(conn, "XNYS", symbol, ["1d"], "import")["id"]
            rows += [(instrument_id, ts, *prices, True)
                     for ts, prices in zip(checked.ts.tolist(), checked.prices.tolist(), strict=True)]
    payload = _CandleColumns.of(rows).binary_copy("1d")
    start = time.perf_counter()
    with engine.begin() as conn:
        copy_from(conn, "candles", _CANDLE_COLUMNS, payload, binary=True)
    seconds = time.perf_counter() - start
    with engine.connect() as conn:
        return seconds, conn.execute(text("SELECT count(*) FROM candles")).scalar_one()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=400)
    args = parser.parse_args(argv)

    from sqlalchemy import create_engine

    from services.core.migrate import upgrade_database
    from tests.utils.servers import postgres_server

    data = make_csv(args.rows, args.symbols)
    print(f"{args.rows:,} rows, {args.symbols} symbols, {len(data) / 1e6:.1f} MB of CSV")
    from services.core.venues import trading_calendar

    trading_calendar("XNYS")  # loaded once per process (about a second), as by any import before it
    with postgres_server() as url:
        upgrade_database(url)
        engine = create_engine(url)
        results = {}
        for name, way in (("COPY", time_copy), ("import", time_import), ("candles COPY", time_candles_copy)):
            _empty(engine)
            results[name] = way(engine, data)
        engine.dispose()
    wrong = {name: count for name, (_, count) in results.items() if count != args.rows}
    if wrong:
        print(f"FAILED: rows left {wrong}; expected {args.rows:,}")
        return 1
    print(f"{'way':14} {'seconds':>8} {'rows/s':>10}")
    for name, (seconds, _) in results.items():
        print(f"{name:14} {seconds:8.2f} {args.rows / seconds:10,.0f}")
    print(f"import / COPY = {results['COPY'][0] / results['import'][0]:.2f} (goal >= 0.5); "
          f"import / candles COPY = {results['candles COPY'][0] / results['import'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
