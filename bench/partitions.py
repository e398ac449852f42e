"""Candles partitioned or not, side by side: upsert rates and read times with 10M+ candles, on one Postgres it starts.

Starts its own PostgreSQL (tests.utils.servers) with two databases, both migrated to the
revision before the partitioning migration and loaded with the same rows: `--instruments`
hourly series of `--years` years ending now, and `--minute-instruments` of them also with
`--minute-days` days of minute bars (the defaults make 10.5M candles). One database is then
migrated to the partitioning revision, which moves the rows over (its time is printed); the
other stays a plain table. Measured on both, interleaved `--repeats` times, medians reported:

  sync upsert     upsert_candle_batch of 50 instruments × 500 hourly bars, the newest two new or
                  changed (what an hourly sync re-fetches with SYNC_LOOKBACK_BARS=500): rows/s
  backfill upsert upsert_candle_batch of 50 new instruments × 2,000 hourly bars: rows/s
  latest bar      SELECT … ORDER BY ts DESC LIMIT 1 for one series (the API, the exporter): ms
  newest closed   marketdata.newest_closed_ts for a batch of 50 (the ingest stage's probe): ms
  last 500 bars   the API's /api/candles default page for one series: ms

and once, at the end, dropping the oldest month of hourly bars: DROP of its partition
against DELETE of the same rows from the plain table. Both databases must hold the same
rows (count and sums) before anything is timed, or the script fails.

    python bench/partitions.py [--instruments 300] [--years 3] [--minute-instruments 60]
                               [--minute-days 30] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main"]

BATCH = 50
SYNC_BARS = 500
BACKFILL_BARS = 2_000
LATEST_SQL = """SELECT ts, open, high, low, close, volume, is_closed FROM candles
                 WHERE instrument_id = %s AND timeframe = %s ORDER BY ts DESC LIMIT 1"""
PAGE_SQL = """SELECT ts, open, high, low, close, volume, is_closed FROM candles
               WHERE instrument_id = %s AND timeframe = %s ORDER BY ts DESC LIMIT 500"""
CHECK_SQL = """SELECT count(*), sum(CAST(close AS numeric)), min(ts), max(ts), count(*) FILTER (WHERE NOT is_closed)
                 FROM candles"""
# Deterministic prices, so both databases hold exactly the same rows.
LOAD_SQL = """
    INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume, is_closed)
    SELECT i, :tf, ts, p, p * 1.01, p * 0.99, p * 1.001, 10 + i % 7, ts < :last
      FROM generate_series(1, :instruments) i, generate_series(CAST(:first AS timestamptz), :last, :step) ts,
           LATERAL (SELECT 100.0 + i + (extract(epoch FROM ts) / 60)::bigint % 997 / 10.0 AS p) price"""


def partition_revisions() -> tuple[str, str]:
    """(the revision before partitioning, the partitioning revision), found by the migration's file name."""
    from alembic.script import ScriptDirectory

    from services.core.migrate import alembic_config

    for script in ScriptDirectory.from_config(alembic_config("postgresql://unused")).walk_revisions():
        if script.path.endswith("_partitioned_candles.py"):
            return script.down_revision, script.revision
    raise SystemExit("no *_partitioned_candles.py migration found")


def load(engine, args, now: datetime) -> None:
    """The instruments and the candles, foreign-key triggers off for the load only (the server's superuser)."""
    from sqlalchemy import text

    hour = now.replace(minute=0, second=0, microsecond=0)
    minute = now.replace(second=0, microsecond=0)
    extra = BATCH * args.repeats  # fresh instruments for the backfills
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO instruments (id, exchange, symbol, timeframes)
                             SELECT n, 'bench', 'S' || n || '/USD', ARRAY['1h'] FROM generate_series(1, :n) n"""),
                     {"n": args.instruments + extra})
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(LOAD_SQL), {"tf": "1h", "instruments": args.instruments, "step": timedelta(hours=1),
                                      "first": hour - timedelta(days=365 * args.years), "last": hour})
        conn.execute(text(LOAD_SQL), {"tf": "1m", "instruments": args.minute_instruments,
                                      "step": timedelta(minutes=1), "first": minute - timedelta(days=args.minute_days),
                                      "last": minute})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE candles"))


def sync_rows(instruments: list[int], newest: datetime, price: float) -> list[tuple]:
    """500 hourly bars ending at `newest` (open) per instrument: the stored closed ones unchanged."""
    rows = []
    for instrument in instruments:
        for back in range(SYNC_BARS - 1, -1, -1):
            ts = newest - timedelta(hours=back)
            bar = stored_bar(instrument, ts, price if back < 2 else None)
            rows.append((instrument, int(ts.timestamp() * 1000), *bar, back != 0))
    return rows


def stored_bar(instrument: int, ts: datetime, price: float | None) -> tuple:
    # The load's formula for bars already stored (so re-fetching them changes nothing), `price` for new ones.
    p = price if price is not None else 100.0 + instrument + int(ts.timestamp() / 60) % 997 / 10.0
    return (p, p * 1.01, p * 0.99, p * 1.001, float(10 + instrument % 7))


def timed_upsert(engine, rows: list[tuple]) -> float:
    from services.ingest.store import upsert_candle_batch

    started = time.perf_counter()
    with engine.begin() as conn:
        upsert_candle_batch(conn, "1h", rows)
    return time.perf_counter() - started


def timed_queries(engine, sql: str, series: list[tuple[int, str]]) -> float:
    """Median ms of `sql` over the series, one round trip each."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        times = []
        for instrument, timeframe in series:
            started = time.perf_counter()
            cursor.execute(sql, (instrument, timeframe))
            cursor.fetchall()
            times.append(time.perf_counter() - started)
        raw.rollback()
    finally:
        raw.close()
    return statistics.median(times) * 1000


def timed_newest_closed(engine, batches: list[list[int]]) -> float:
    from services.core.store.marketdata import newest_closed_ts

    times = []
    with engine.connect() as conn:
        for ids in batches:
            started = time.perf_counter()
            newest_closed_ts(conn, ids, "1h")
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def drop_oldest_month(engine, partitioned: bool) -> tuple[float, int]:
    """Seconds to remove the oldest whole month of hourly bars, and the rows it held."""
    from sqlalchemy import text

    from services.core.store.partitions import read_layout

    with engine.begin() as conn:
        first = conn.execute(text("SELECT min(ts) FROM candles WHERE timeframe = '1h'")).scalar_one()
        start = datetime(first.year, first.month, 1, tzinfo=UTC) + timedelta(days=32)
        start, end = start.replace(day=1), (start.replace(day=1) + timedelta(days=32)).replace(day=1)
        rows = conn.execute(text("SELECT count(*) FROM candles WHERE timeframe = '1h' AND ts >= :s AND ts < :e"),
                            {"s": start, "e": end}).scalar_one()
        name = next((name for span, name in read_layout(conn, "candles").spans.get("1h", []) if span.start == start),
                    None) if partitioned else None
    started = time.perf_counter()
    with engine.begin() as conn:
        if partitioned:
            conn.execute(text(f"DROP TABLE partitions.{name}"))  # nosec B608: a name read from the catalog
        else:
            conn.execute(text("DELETE FROM candles WHERE timeframe = '1h' AND ts >= :s AND ts < :e"),
                         {"s": start, "e": end})
    return time.perf_counter() - started, rows


def size_mb(engine) -> tuple[float, int]:
    """MB of candles with its indexes, and how many tables hold its rows (a plain table is its own one)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        mb, leaves = conn.execute(text("""SELECT sum(pg_total_relation_size(relid)) / 1e6,
                                                 count(*) FILTER (WHERE isleaf)
                                            FROM pg_partition_tree('candles')""")).one()
        if not leaves:  # not partitioned: pg_partition_tree says nothing of it
            return conn.execute(text("SELECT pg_total_relation_size('candles') / 1e6")).scalar_one(), 1
    return float(mb), leaves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--minute-instruments", type=int, default=60)
    parser.add_argument("--minute-days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queries", type=int, default=2_000, help="queries per read figure and repeat")
    args = parser.parse_args()
    if min(args.instruments, args.years, args.minute_instruments, args.minute_days, args.repeats, args.queries) < 1:
        parser.error("every count must be at least 1")
    if args.minute_instruments > args.instruments or args.instruments < BATCH:
        parser.error(f"--instruments must be at least {BATCH} and at least --minute-instruments")

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from services.core.migrate import upgrade_database
    from tests.utils.servers import postgres_server

    before, partitioning = partition_revisions()
    now = datetime.now(UTC)
    rng = random.Random(13)
    with postgres_server() as url:
        engines = {}
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        for name in ("plain", "partitioned"):
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            db_url = make_url(url).set(database=name).render_as_string(hide_password=False)
            upgrade_database(db_url, before)
            engines[name] = create_engine(db_url)
            started = time.perf_counter()
            load(engines[name], args, now)
            print(f"{name}: loaded in {time.perf_counter() - started:.0f} s")
            if name == "partitioned":
                started = time.perf_counter()
                upgrade_database(db_url, partitioning)
                print(f"partitioned: migration {partitioning} moved the rows in {time.perf_counter() - started:.0f} s")
                with engines[name].connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE candles"))
        held = {}
        for name, engine in engines.items():
            with engine.connect() as conn:
                held[name] = tuple(conn.execute(text(CHECK_SQL)).one())
        if held["plain"] != held["partitioned"]:
            sys.exit(f"the databases hold different rows: {held}")
        print(f"{held['plain'][0]:,} candles in each; {held['plain'][2]:%Y-%m-%d} to {held['plain'][3]:%Y-%m-%d %H:%M}")
        for name, engine in engines.items():
            mb, leaves = size_mb(engine)
            print(f"{name}: {mb:,.0f} MB with indexes, in {leaves} table(s)")

        figures: dict[str, dict[str, list[float]]] = {name: {} for name in engines}
        hour = now.replace(minute=0, second=0, microsecond=0)
        for repeat in range(args.repeats):
            synced = rng.sample(range(1, args.instruments + 1), BATCH)
            fresh = list(range(args.instruments + 1 + repeat * BATCH, args.instruments + 1 + (repeat + 1) * BATCH))
            sync = sync_rows(synced, hour + timedelta(hours=repeat + 1), 123.25 + repeat)
            backfill = [(i, int((hour - timedelta(hours=h)).timestamp() * 1000), *stored_bar(i, hour, 50.0 + h % 13),
                         True) for i in fresh for h in range(BACKFILL_BARS, 0, -1)]
            series = [(rng.randint(1, args.instruments), "1h") for _ in range(args.queries)]
            series[::4] = [(rng.randint(1, args.minute_instruments), "1m") for _ in series[::4]]
            batches = [rng.sample(range(1, args.instruments + 1), BATCH) for _ in range(max(1, args.queries // 20))]
            for name, engine in (engines.items() if repeat % 2 == 0 else reversed(engines.items())):
                got = figures[name]
                got.setdefault("sync upsert rows/s", []).append(len(sync) / timed_upsert(engine, sync))
                got.setdefault("backfill upsert rows/s", []).append(len(backfill) / timed_upsert(engine, backfill))
                got.setdefault("latest bar ms", []).append(timed_queries(engine, LATEST_SQL, series))
                got.setdefault("newest closed ×50 ms", []).append(timed_newest_closed(engine, batches))
                got.setdefault("last 500 bars ms", []).append(timed_queries(engine, PAGE_SQL, series[:200]))
        dropped = {name: drop_oldest_month(engine, name == "partitioned") for name, engine in engines.items()}
        for engine in engines.values():
            engine.dispose()
        admin.dispose()

    load_avg = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.repeats} repeats, medians; load average {load_avg}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{'figure':<24}{'plain':>14}{'partitioned':>14}{'ratio':>8}")
    for figure in figures["plain"]:
        plain, parted = (statistics.median(figures[name][figure]) for name in ("plain", "partitioned"))
        print(f"{figure:<24}{plain:>14,.2f}{parted:>14,.2f}{parted / plain:>8.2f}")
    (plain_s, rows), (parted_s, _) = dropped["plain"], dropped["partitioned"]
    print(f"{'drop a month, 1h':<24}{plain_s:>14.3f}{parted_s:>14.3f}{parted_s / plain_s:>8.3f}"
          f"   seconds, {rows:,} rows (DELETE vs DROP of its partition)")


if __name__ == "__main__":
    main()
