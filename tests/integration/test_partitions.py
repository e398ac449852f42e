"""Partitioned candles on real Postgres: the migration on a populated database, the maintenance job, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.core.migrate import alembic_config, upgrade_database
from services.core.partitioning import INTERVALS
from services.core.store.partitions import maintain_partitions, read_layout
from services.ingest.store import upsert_candle_batch

pytestmark = pytest.mark.integration

MONTH = INTERVALS["month"]
NOW = datetime(2026, 7, 10, 12, tzinfo=UTC)
# Every column of every row, in key order: equal digests mean the same rows with the same values.
_DIGEST = """SELECT count(*), sum(CAST(t.{column} AS numeric)),
                     md5(string_agg(t::text, ',' ORDER BY instrument_id, timeframe, ts))
                FROM {table} t"""
DIGEST_SQL = _DIGEST.format(column="close", table="candles")
INDICATOR_DIGEST_SQL = _DIGEST.format(column="rsi", table="indicator_values")
POPULATE_SQL = [
    """INSERT INTO instruments (id, exchange, symbol, timeframes) VALUES
           (1, 'kraken', 'BTC/USD', '{1m,1h}'), (2, 'kraken', 'ETH/USD', '{1h}')""",
    # 14 months of hourly bars for both, three days of minute bars across a month's end for one;
    # the newest bar of each series still open.
    """INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume, is_closed)
       SELECT i, tf, ts, p, p + 1.5, p - 1.25, p + 0.5, i * 10 + extract(epoch FROM ts) / 1e9, ts < last
         FROM (SELECT i, tf, ts, last, 100 + i + extract(epoch FROM ts) / 3.6e6 AS p
                 FROM (VALUES (1, '1h', timestamptz '2025-03-01', timestamptz '2026-04-30 23:00+00', interval '1 hour'),
                              (2, '1h', '2025-03-01', '2026-04-30 23:00+00', '1 hour'),
                              (1, '1m', '2026-03-30', '2026-04-01 23:59+00', '1 minute')) s(i, tf, first, last, step),
                      generate_series(first, last, step) ts) bars""",
    """INSERT INTO indicator_values (instrument_id, timeframe, ts, rsi, atr, regime, is_closed)
       SELECT instrument_id, timeframe, ts, close / 3, high - low, 'trend', is_closed FROM candles""",
]


@pytest.fixture()
def new_database(database_url):
    """Make a database of its own on the suite's server (partitions are schema, which other tests share)."""
    made = []
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")

    def make(revision: str = "head"):
        name = f"cf_parts_{len(made)}"
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        upgrade_database(url, revision)
        engine = create_engine(url)
        made.append((name, engine))
        return url, engine

    yield make
    for name, engine in made:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def add_instrument(conn, timeframes: str) -> None:
    conn.execute(text("INSERT INTO instruments (id, exchange, symbol, timeframes) VALUES (1, 'x', 'A/B', :tf)"),
                 {"tf": timeframes})


def digests(engine) -> tuple:
    with engine.connect() as conn:
        return (tuple(conn.execute(text(DIGEST_SQL)).one()),
                tuple(conn.execute(text(INDICATOR_DIGEST_SQL)).one()))


def relkind(engine, table: str) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT relkind FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                            {"t": table}).scalar()


def rows_in_defaults(engine, table: str) -> int:
    """Rows in the table's default or a rest partition: waiting for their span."""
    with engine.connect() as conn:
        return conn.execute(text(f"""SELECT count(*) FROM {table} t JOIN pg_class c ON c.oid = t.tableoid
                                      WHERE c.relname LIKE '%default' OR c.relname LIKE '%rest%'""")
                            ).scalar_one()  # nosec B608


def leaves(engine, table: str) -> list[tuple[str, str]]:
    """Every leaf partition and its bounds, by name."""
    with engine.connect() as conn:
        conn.execute(text("SET TimeZone = 'UTC'"))
        return [tuple(row) for row in conn.execute(text("""
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_partition_tree(CAST(:t AS regclass)) p
              JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf ORDER BY 1"""), {"t": table})]


def span_months(engine, table: str, timeframe: str) -> list[str]:
    with engine.begin() as conn:
        layout = read_layout(conn, table)
    return [f"{span.start:%Y-%m}" for span, _ in layout.spans.get(timeframe, [])]


def test_the_migration_keeps_every_row_and_key_and_its_downgrade_too(new_database):
    url, engine = new_database("0009")
    with engine.begin() as conn:
        for statement in POPULATE_SQL:
            conn.execute(text(statement))
    before = digests(engine)
    assert before[0][0] == 2 * 10_224 + 3 * 1440 and before[1][0] == before[0][0]

    upgrade_database(url, "0010")
    assert digests(engine) == before
    assert relkind(engine, "candles") == relkind(engine, "indicator_values") == "p"
    for table in ("candles", "indicator_values"):
        assert rows_in_defaults(engine, table) == 0, "every row sits in the span that holds it"
        months = span_months(engine, table, "1h")
        assert months[:14] == [f"{year}-{month:02d}" for year, month in
                               [(2025, m) for m in range(3, 13)] + [(2026, m) for m in range(1, 5)]]
        assert span_months(engine, table, "1m")[:2] == ["2026-03", "2026-04"]
        assert len(months) >= 14 + 4, "the current span and three ahead exist too"

    from alembic import command
    command.downgrade(alembic_config(url), "0009")
    assert digests(engine) == before
    assert relkind(engine, "candles") == relkind(engine, "indicator_values") == "r"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = 'partitions'")).scalar() == 0
        assert conn.execute(text("SELECT conname FROM pg_constraint WHERE conrelid = 'candles'::regclass "
                                 "ORDER BY conname")).scalars().all() == ["candles_instrument_id_fkey", "candles_pkey"]


def test_upserts_still_deduplicate_on_the_partitioned_table(new_database):
    url, engine = new_database("0009")
    with engine.begin() as conn:
        for statement in POPULATE_SQL:
            conn.execute(text(statement))
    upgrade_database(url, "0010")
    before = digests(engine)
    newest_ms = int(datetime(2026, 4, 30, 23, tzinfo=UTC).timestamp() * 1000)
    with engine.begin() as conn:
        stored = conn.execute(text("""SELECT instrument_id, (extract(epoch FROM ts) * 1000)::bigint, open, high, low,
                                             close, volume, is_closed FROM candles
                                       WHERE timeframe = '1h' AND instrument_id = 1 AND ts >= '2026-04-30'
                                       ORDER BY ts""")).all()
        assert upsert_candle_batch(conn, "1h", [tuple(row) for row in stored]) == 0
    assert digests(engine) == before, "the same rows again write nothing"
    with engine.begin() as conn:
        closed_now = (1, newest_ms, 1.0, 2.0, 0.5, 1.5, 9.0, True)
        next_bar = (1, newest_ms + 3_600_000, 1.5, 2.5, 1.0, 2.0, 3.0, False)
        assert upsert_candle_batch(conn, "1h", [closed_now, next_bar]) == 2
        assert upsert_candle_batch(conn, "1h", [closed_now, next_bar]) == 0
        conn.execute(text("""INSERT INTO indicator_values (instrument_id, timeframe, ts, rsi, is_closed)
                             VALUES (1, '1h', '2026-04-30 23:00+00', 1, true)
                             ON CONFLICT (instrument_id, timeframe, ts) DO UPDATE SET rsi = EXCLUDED.rsi"""))
    (count, _, _), (indicators, _, _) = digests(engine)
    assert (count, indicators) == (before[0][0] + 1, before[1][0])
    with engine.connect() as conn:
        assert conn.execute(text("""SELECT is_closed, close FROM candles WHERE instrument_id = 1 AND timeframe = '1h'
                                     AND ts = '2026-04-30 23:00+00'""")).one() == (True, 1.5)
        assert conn.execute(text("""SELECT rsi FROM indicator_values WHERE instrument_id = 1 AND timeframe = '1h'
                                     AND ts = '2026-04-30 23:00+00'""")).scalar_one() == 1


def test_maintenance_makes_spans_ahead_and_empties_the_defaults(new_database):
    _url, engine = new_database()
    with engine.begin() as conn:
        add_instrument(conn, "{4h}")
        # A write nothing was made for yet lands in a default instead of failing: a timeframe no partition
        # exists for (5m), and an hourly bar years ahead of every span.
        upsert_candle_batch(conn, "5m", [(1, int(NOW.timestamp() * 1000), 1.0, 1.0, 1.0, 1.0, 1.0, True)])
        upsert_candle_batch(conn, "1h", [(1, int(datetime(2030, 1, 5, tzinfo=UTC).timestamp() * 1000),
                                          1.0, 1.0, 1.0, 1.0, 1.0, True)])
    assert rows_in_defaults(engine, "candles") == 2
    before = digests(engine)

    report = maintain_partitions(engine, MONTH, 3, {}, ["1h"], NOW)
    created = report["candles"]["created"]
    assert {"candles_4h", "candles_5m", "candles_5m_20260701", "candles_1h_20300101",
            "candles_4h_20261001"} <= set(created)
    assert rows_in_defaults(engine, "candles") == 0 and digests(engine) == before
    with engine.connect() as conn:  # spans read in order: the newest bar costs one span's probe, not all of them
        plan = "\n".join(conn.execute(text("""EXPLAIN SELECT * FROM candles WHERE instrument_id = 1
                                              AND timeframe = '1h' ORDER BY ts DESC LIMIT 1""")).scalars())
    assert "Append" in plan and "Merge Append" not in plan, plan
    assert span_months(engine, "indicator_values", "4h") == ["2026-07", "2026-08", "2026-09", "2026-10"]
    assert maintain_partitions(engine, MONTH, 3, {}, ["1h"], NOW) == {
        table: {"created": [], "dropped": [], "deferred": []} for table in ("candles", "indicator_values")}


def test_retention_drops_only_the_spans_wholly_past_it_and_only_of_its_timeframe(new_database):
    _url, engine = new_database()
    months = [datetime(2026, month, 15, tzinfo=UTC) for month in range(1, 7)]
    with engine.begin() as conn:
        add_instrument(conn, "{1m,1h}")
        for timeframe in ("1m", "1h"):
            upsert_candle_batch(conn, timeframe, [(1, int(ts.timestamp() * 1000), 1.0, 1.0, 1.0, 1.0, 1.0, True)
                                                  for ts in months])
        conn.execute(text("""INSERT INTO indicator_values (instrument_id, timeframe, ts, is_closed)
                             SELECT instrument_id, timeframe, ts, is_closed FROM candles"""))
    maintain_partitions(engine, MONTH, 3, {}, [], NOW)

    report = maintain_partitions(engine, MONTH, 3, {"1m": timedelta(days=90)}, [], NOW)
    # 90 days before 10 July is 11 April: January to March are wholly older, April is not.
    assert report["candles"]["dropped"] == ["candles_1m_20260101", "candles_1m_20260201", "candles_1m_20260301"]
    assert report["indicator_values"]["dropped"] == [name.replace("candles", "indicator_values")
                                                     for name in report["candles"]["dropped"]]
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT timeframe, count(*) FROM candles GROUP BY timeframe ORDER BY 1")).all()
        kept_indicators = conn.execute(text("SELECT count(*) FROM indicator_values")).scalar_one()
        kept_indicators = conn.execute(text("SELECT count(*) FROM indicator_values")).scalar_one()
    assert kept == [("1h", 6), ("1m", 3)] and kept_indicators == 9
    minute = [(name, bounds) for name, bounds in leaves(engine, "candles") if name.startswith("candles_1m_")]
    # The rest partition before the spans grew over the dropped ones: all time is still covered, by few tables.
    assert minute[0] == ("candles_1m_20260401",
                         "FOR VALUES FROM ('2026-04-01 00:00:00+00') TO ('2026-05-01 00:00:00+00')")
    assert minute[-2:] == [
        ("candles_1m_rest_20261101", "FOR VALUES FROM ('2026-11-01 00:00:00+00') TO (MAXVALUE)"),
        ("candles_1m_rest_min", "FOR VALUES FROM (MINVALUE) TO ('2026-04-01 00:00:00+00')")]
    assert len(minute) == 7 + 2
    with engine.begin() as conn:  # a late bar for dropped time is still written
        upsert_candle_batch(conn, "1m", [(1, int(months[0].timestamp() * 1000), 1.0, 1.0, 1.0, 1.0, 1.0, True)])
    assert rows_in_defaults(engine, "candles") == 1 and kept_indicators == 9


def test_a_span_busy_with_a_reader_is_left_for_the_next_run(new_database):
    _url, engine = new_database()
    with engine.begin() as conn:
        add_instrument(conn, "{1m}")
        upsert_candle_batch(conn, "1m", [(1, int(datetime(2026, 1, 2, tzinfo=UTC).timestamp() * 1000),
                                          1.0, 1.0, 1.0, 1.0, 1.0, True)])
    maintain_partitions(engine, MONTH, 3, {}, [], NOW)
    reader = engine.connect()
    try:
        reader.execute(text("SELECT count(*) FROM candles WHERE timeframe = '1m'"))  # holds its lock until rollback
        report = maintain_partitions(engine, MONTH, 3, {"1m": timedelta(days=30)}, [], NOW)
        assert report["candles"]["dropped"] == [] and "lock timeout" in report["candles"]["deferred"][0]
    finally:
        reader.rollback()
        reader.close()
    assert maintain_partitions(engine, MONTH, 3, {"1m": timedelta(days=30)}, [], NOW)["candles"]["dropped"] == [
        "candles_1m_20260101"]


def test_python_floors_name_the_spans_postgres_truncates_to(new_database):
    _url, engine = new_database()
    instants = [datetime(2024, 2, 29, 23, 59, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
                datetime(2025, 12, 31, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]
    with engine.connect() as conn:
        for unit, interval in INTERVALS.items():
            for instant in instants:
                assert conn.execute(text("SELECT date_trunc(:u, CAST(:t AS timestamptz), 'UTC')"),
                                    {"u": unit, "t": instant}).scalar_one() == interval.floor(instant), (unit, instant)


def test_the_scheduled_task_lays_out_and_expires_by_the_settings(new_database, monkeypatch):
    from services.core import config
    from services.core.pipeline.tasks import maintain_partitions_task

    url, engine = new_database()
    with engine.begin() as conn:
        add_instrument(conn, "{1m}")
        upsert_candle_batch(conn, "1m", [(1, int(datetime(2020, 3, 1, tzinfo=UTC).timestamp() * 1000),
                                          1.0, 1.0, 1.0, 1.0, 1.0, True)])
    for name, value in {"DATABASE_URL": url, "CANDLE_PARTITION_INTERVAL": "year", "CANDLE_RETENTION": "1m=30d"}.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    try:
        report = maintain_partitions_task()
    finally:
        config.get_settings.cache_clear()
    this_year = datetime.now(UTC).year
    # A yearly span made for the 2020 bar, then dropped: all of it is older than 30 days.
    assert {"candles_1m_20200101", f"candles_1m_{this_year}0101", f"candles_1m_{this_year + 3}0101"} <= set(
        report["candles"]["created"])
    assert report["candles"]["dropped"] == ["candles_1m_20200101"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM candles")).scalar_one() == 0


def test_writes_during_maintenance_are_neither_refused_nor_lost(new_database):
    import threading

    _url, engine = new_database()
    with engine.begin() as conn:
        add_instrument(conn, "{1h}")
    # Hourly bars from years back to years ahead, written while the job splits rest partitions around them.
    first = datetime(2024, 1, 1, tzinfo=UTC)
    bars = [int((first + timedelta(hours=37 * n)).timestamp() * 1000) for n in range(2_000)]
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for start in range(0, len(bars), 10):
                with engine.begin() as conn:
                    upsert_candle_batch(conn, "1h", [(1, ts, 1.0, 1.0, 1.0, 1.0, 1.0, True)
                                                     for ts in bars[start:start + 10]])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    reports = []
    while writer.is_alive():
        reports.append(maintain_partitions(engine, MONTH, 3, {}, [], NOW))
    writer.join()
    reports.append(maintain_partitions(engine, MONTH, 3, {}, [], NOW))
    assert sum(len(report["candles"]["created"]) for report in reports[:-1]) > 0, "the job ran while writes went on"
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM candles")).scalar_one() == len(bars)
    assert rows_in_defaults(engine, "candles") == 0, reports[-1]
    assert len(span_months(engine, "candles", "1h")) >= len({f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m}"
                                                             for ms in bars})
