"""Partitions of candles and indicator_values: the layout in the catalog, spans made ahead, expired spans dropped.

Each table is LIST-partitioned by timeframe, and each timeframe's partition RANGE-partitioned by ts
in spans of CANDLE_PARTITION_INTERVAL (ADR 0028). A DEFAULT partition at both levels takes any row
no span holds yet, so a write never fails; creating a span moves its rows out of the default first.
Partitions live in their own schema, so `public` holds exactly the tables the models describe.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg2.errors
from psycopg2 import sql
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from services.core.partitioning import PartitionInterval, Span, gaps

__all__ = ["PARTITIONED_TABLES", "SCHEMA", "Layout", "Creation", "MaintenanceReport", "read_layout", "span_starts",
           "plan_creations", "expired_partitions", "create_partition", "drop_partition", "build_layout",
           "kept_timeframes",
           "maintain_partitions", "partition_name"]

log = logging.getLogger(__name__)

PARTITIONED_TABLES = ("candles", "indicator_values")
SCHEMA = "partitions"
# A maintenance step waits this long for a lock, then gives way to the pipeline's writes and is
# retried at the next run: a DROP queued behind a long read would stall every writer behind it.
_LOCK_TIMEOUT = "5s"
# One job at a time per database (a manual run meeting the scheduled one); any constant unique to this job.
_ADVISORY_LOCK = 0x63660028

_RANGE_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")
_LIST_BOUND = re.compile(r"FOR VALUES IN \('([^']+)'\)")
_TREE_SQL = text("""
    SELECT c.relname, n.nspname, t.level, pg_get_expr(c.relpartbound, c.oid), parent.relname
      FROM pg_partition_tree(CAST(:table AS regclass)) t
      JOIN pg_class c ON c.oid = t.relid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_class parent ON parent.oid = t.parentrelid
     WHERE t.level > 0""")


@dataclass
class Layout:
    """What the catalog holds for one partitioned table: its default, and per timeframe its
    partition, that partition's default, and its spans (each with the partition's name)."""

    table: str
    default: str | None = None
    lists: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    spans: dict[str, list[tuple[Span, str]]] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class Creation:
    """A partition to create: a timeframe's own (span None), or one span of it."""

    timeframe: str
    span: Span | None = None


@dataclass
class MaintenanceReport:
    """What one maintenance run did, per table: partitions created, dropped, and steps deferred by a lock."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"created": self.created, "dropped": self.dropped, "deferred": self.deferred}


def partition_name(table: str, timeframe: str | None = None, start: datetime | None = None) -> str:
    """The name we give a partition: `candles_default`, `candles_1m`, `candles_1m_default`, `candles_1m_20260101`."""
    if timeframe is None:
        return f"{table}_default"
    if start is None:
        return f"{table}_{timeframe}"
    stamp = f"{start:%Y%m%d}" if (start.hour, start.minute) == (0, 0) else f"{start:%Y%m%d_%H%M}"
    return f"{table}_{timeframe}_{stamp}"


def _instant(literal: str) -> datetime:
    return datetime.fromisoformat(literal)  # the catalog's text, read with TimeZone UTC


def read_layout(conn: Connection, table: str) -> Layout:
    """The table's partitions as the catalog holds them (bounds read in UTC)."""
    conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    layout = Layout(table)
    rows = conn.execute(_TREE_SQL, {"table": table}).all()
    timeframe_of = {}
    for name, _schema, level, bound, _parent in rows:
        if level == 1:
            if bound == "DEFAULT":
                layout.default = name
            elif match := _LIST_BOUND.fullmatch(bound):
                layout.lists[match.group(1)] = name
                timeframe_of[name] = match.group(1)
    for name, _schema, level, bound, parent in rows:
        timeframe = timeframe_of.get(parent)
        if level != 2 or timeframe is None:
            continue
        if bound == "DEFAULT":
            layout.defaults[timeframe] = name
        elif match := _RANGE_BOUND.fullmatch(bound):
            span = Span(_instant(match.group(1)), _instant(match.group(2)))
            layout.spans.setdefault(timeframe, []).append((span, name))
    for spans in layout.spans.values():
        spans.sort()
    return layout


def span_starts(conn: Connection, relations: Iterable[tuple[str | None, str]], interval: PartitionInterval
                ) -> dict[str, set[datetime]]:
    """Per timeframe, the starts of the spans the rows of `relations` ((schema, name) pairs) fall in."""
    found: dict[str, set[datetime]] = {}
    for schema, name in relations:
        statement = sql.SQL("SELECT DISTINCT timeframe, date_trunc({unit}, ts, 'UTC') FROM {relation}").format(
            unit=sql.Literal(interval.unit), relation=sql.Identifier(*filter(None, (schema, name))))
        for timeframe, start in _run(conn, statement).all():
            found.setdefault(timeframe, set()).add(start)
    return found


def plan_creations(layout: Layout, timeframes: Iterable[str], occupied: dict[str, set[datetime]],
                   interval: PartitionInterval, ahead: int, now: datetime) -> list[Creation]:
    """The partitions to create: each timeframe's own, then for each timeframe the spans from now's
    to `ahead` spans later and those rows already wait in a default for, minus what exists."""
    every = sorted(set(timeframes) | set(occupied) | set(layout.lists))
    creations = [Creation(timeframe) for timeframe in every if timeframe not in layout.lists]
    first = interval.floor(now)
    upcoming = [first]
    for _ in range(ahead):
        upcoming.append(interval.after(upcoming[-1]))
    for timeframe in every:
        starts = set(upcoming) | {interval.floor(start) for start in occupied.get(timeframe, ())}
        wanted = [Span(start, interval.after(start)) for start in starts]
        existing = [span for span, _name in layout.spans.get(timeframe, [])]
        creations += [Creation(timeframe, span) for span in gaps(wanted, existing)]
    return creations


def expired_partitions(layout: Layout, retention: dict[str, timedelta], now: datetime) -> list[str]:
    """The spans wholly older than their timeframe's retention: every row in them is past it."""
    return [name for timeframe, keep in sorted(retention.items())
            for span, name in layout.spans.get(timeframe, []) if span.end <= now - keep]


def create_partition(conn: Connection, layout: Layout, creation: Creation) -> str:
    """Create one partition, moving the rows it will hold out of the default that holds them now.

    The default is locked against writes first: a row written to it for this range between the
    move and the attach would make the attach fail. Readers are not blocked until the attach.
    """
    table, timeframe, span = layout.table, creation.timeframe, creation.span
    name = partition_name(table, timeframe, span.start if span else None)
    target = sql.Identifier(SCHEMA, name)
    source = layout.default if span is None else layout.defaults.get(timeframe)
    if span is None:
        parent, bound = sql.Identifier(table), sql.SQL("FOR VALUES IN ({})").format(sql.Literal(timeframe))
        rows = sql.SQL("timeframe = {}").format(sql.Literal(timeframe))
        partitioned = sql.SQL(" PARTITION BY RANGE (ts)")
    else:
        parent = sql.Identifier(SCHEMA, layout.lists[timeframe])
        bound = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(sql.Literal(span.start), sql.Literal(span.end))
        rows = sql.SQL("ts >= {} AND ts < {}").format(sql.Literal(span.start), sql.Literal(span.end))
        partitioned = sql.SQL("")
    _run(conn, sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
    if source is not None:
        _run(conn, sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(SCHEMA, source)))
    _run(conn, sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){}").format(
        target, sql.Identifier(table), partitioned))
    if span is None:  # a timeframe's partition always has a default, so its own writes never fail either
        _run(conn, sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(
            sql.Identifier(SCHEMA, partition_name(table, timeframe) + "_default"), target))
    if source is not None:
        _run(conn, sql.SQL("WITH moved AS (DELETE FROM {} WHERE {} RETURNING *) INSERT INTO {} SELECT * FROM moved")
             .format(sql.Identifier(SCHEMA, source), rows, target))
    _run(conn, sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(parent, target, bound))
    return name


def drop_partition(conn: Connection, name: str) -> str:
    """Drop one partition and its rows (it holds one timeframe's bars of one span, nothing else); its name."""
    _run(conn, sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
    _run(conn, sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, name)))
    return name


def build_layout(conn: Connection, table: str, timeframes: Iterable[str], occupied: dict[str, set[datetime]],
                 interval: PartitionInterval, ahead: int, now: datetime) -> list[str]:
    """Create, in the caller's transaction, every partition `table` needs for `occupied` spans and
    `ahead` spans past now (a migration lays out the table before it moves rows in); their names."""
    created = []
    for only_timeframes in (True, False):  # a timeframe's own partition first: its spans attach to it
        layout = read_layout(conn, table)
        for creation in plan_creations(layout, timeframes, occupied, interval, ahead, now):
            if (creation.span is None) == only_timeframes:
                created.append(create_partition(conn, layout, creation))
    return created


def kept_timeframes(conn: Connection) -> set[str]:
    """Every timeframe an instrument of the universe keeps."""
    return set(conn.execute(text("SELECT DISTINCT unnest(timeframes) FROM instruments")).scalars())


def maintain_partitions(engine: Engine, interval: PartitionInterval, ahead: int, retention: dict[str, timedelta],
                        timeframes: Iterable[str], now: datetime) -> dict[str, dict]:
    """Bring every partitioned table's layout up to date: each step in its own short transaction,
    a step that cannot get its lock within a few seconds left for the next run. Per table, a report."""
    reports = {}
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _ADVISORY_LOCK}).scalar_one():
            conn.commit()
            log.info("partition maintenance already running elsewhere; this run does nothing")
            return {table: MaintenanceReport().as_dict() for table in PARTITIONED_TABLES}
        conn.commit()
        try:
            with conn.begin():
                wanted = set(timeframes) | kept_timeframes(conn)
            for table in PARTITIONED_TABLES:
                reports[table] = _maintain_table(conn, table, interval, ahead, retention, wanted, now).as_dict()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK})
            conn.commit()
    return reports


def _maintain_table(conn: Connection, table: str, interval: PartitionInterval, ahead: int,
                    retention: dict[str, timedelta], timeframes: set[str], now: datetime) -> MaintenanceReport:
    report = MaintenanceReport()
    # Two passes: a timeframe's own partition first, so the second pass finds its default to carve spans from.
    for only_timeframes in (True, False):
        with conn.begin():
            layout = read_layout(conn, table)
            defaults = [(SCHEMA, name) for name in [layout.default, *layout.defaults.values()] if name]
            occupied = span_starts(conn, defaults, interval)
        for creation in plan_creations(layout, timeframes, occupied, interval, ahead, now):
            if (creation.span is None) == only_timeframes:
                _step(conn, report.created, report.deferred, create_partition, layout, creation)
    with conn.begin():
        layout = read_layout(conn, table)
    for name in expired_partitions(layout, retention, now):
        _step(conn, report.dropped, report.deferred, drop_partition, name)
    if report.created or report.dropped:
        log.info("%s partitions: created %s, dropped %s", table, report.created or "none", report.dropped or "none")
    if report.deferred:
        log.warning("%s partitions: %s waited too long for a lock; the next run retries", table, report.deferred)
    return report


def _step(conn: Connection, done: list[str], deferred: list[str], action: Callable[..., str], *args: object) -> None:
    """`action(conn, *args)` in a transaction of its own: its name into `done`, a lock timeout into `deferred`."""
    try:
        with conn.begin():
            done.append(action(conn, *args))
    except OperationalError as exc:
        if not isinstance(exc.orig, psycopg2.errors.LockNotAvailable):
            raise
        deferred.append(str(exc.orig).strip().splitlines()[0])


def _run(conn: Connection, statement: sql.Composable):
    """Execute a statement composed with psycopg2's quoting (identifiers, literals) on the connection."""
    return conn.exec_driver_sql(statement.as_string(conn.connection.dbapi_connection))
