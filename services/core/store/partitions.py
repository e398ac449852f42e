"""Partitions of candles and indicator_values: the layout in the catalog, spans made ahead, expired spans dropped.

Each table is LIST-partitioned by timeframe, and each timeframe's partition RANGE-partitioned by ts
in spans of CANDLE_PARTITION_INTERVAL (ADR 0028). A write never fails for want of a partition: the
table's DEFAULT partition takes a timeframe that has none yet, and within a timeframe "rest"
partitions cover all time no span does (from MINVALUE to the first span, between spans, from the
last span to MAXVALUE). Not a DEFAULT there: with one, Postgres cannot read a timeframe's spans
in order, and a latest-bar read would probe every span instead of the newest. Making a span
splits the rest partition holding its time, moving its rows. Partitions live in their own
schema, so `public` holds exactly the tables the models describe.
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

__all__ = ["PARTITIONED_TABLES", "SCHEMA", "Layout", "Rest", "Creation", "MaintenanceReport", "read_layout",
           "span_starts", "plan_creations", "expired_partitions", "create_partition", "drop_span", "build_layout",
           "kept_timeframes", "maintain_partitions", "partition_name"]

log = logging.getLogger(__name__)

PARTITIONED_TABLES = ("candles", "indicator_values")
SCHEMA = "partitions"
# A maintenance step waits this long for a lock, then gives way to the pipeline's writes and is
# retried at the next run: a DETACH queued behind a long read would stall every writer behind it.
_LOCK_TIMEOUT = "5s"
# One job at a time per database (a manual run meeting the scheduled one); any constant unique to this job.
_ADVISORY_LOCK = 0x63660028
_REST = "rest"

_BOUND = r"(MINVALUE|MAXVALUE|'[^']+')"
_RANGE_BOUND = re.compile(rf"FOR VALUES FROM \({_BOUND}\) TO \({_BOUND}\)")
_LIST_BOUND = re.compile(r"FOR VALUES IN \('([^']+)'\)")
_TREE_SQL = text("""
    SELECT c.relname, t.level, pg_get_expr(c.relpartbound, c.oid), parent.relname
      FROM pg_partition_tree(CAST(:table AS regclass)) t
      JOIN pg_class c ON c.oid = t.relid
      LEFT JOIN pg_class parent ON parent.oid = t.parentrelid
     WHERE t.level > 0""")


@dataclass(frozen=True, order=True)
class Rest:
    """A rest partition: the time [start, end) between spans; None is MINVALUE or MAXVALUE."""

    start: datetime | None
    end: datetime | None
    name: str = field(compare=False)

    def holds(self, span: Span) -> bool:
        return (self.start is None or self.start <= span.start) and (self.end is None or span.end <= self.end)


@dataclass
class Layout:
    """What the catalog holds for one partitioned table: its default, and per timeframe its
    partition, its spans (each with the partition's name) and its rest partitions."""

    table: str
    default: str | None = None
    lists: dict[str, str] = field(default_factory=dict)
    spans: dict[str, list[tuple[Span, str]]] = field(default_factory=dict)
    rests: dict[str, list[Rest]] = field(default_factory=dict)

    def rest_partitions(self) -> list[str]:
        return [rest.name for rests in self.rests.values() for rest in rests]


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


def partition_name(table: str, timeframe: str | None = None, start: datetime | None = None,
                   rest: bool = False) -> str:
    """The name we give a partition: `candles_default`, `candles_1m`, `candles_1m_20260101` (a span),
    `candles_1m_rest_min` and `candles_1m_rest_20260401` (rest partitions, by where they start)."""
    if timeframe is None:
        return f"{table}_default"
    if start is None:
        return f"{table}_{timeframe}_{_REST}_min" if rest else f"{table}_{timeframe}"
    stamp = f"{start:%Y%m%d}" if (start.hour, start.minute) == (0, 0) else f"{start:%Y%m%d_%H%M}"
    return f"{table}_{timeframe}_{_REST}_{stamp}" if rest else f"{table}_{timeframe}_{stamp}"


def _instant(literal: str) -> datetime | None:
    # The catalog's text, read with TimeZone UTC; MINVALUE and MAXVALUE are no instant.
    return None if literal in ("MINVALUE", "MAXVALUE") else datetime.fromisoformat(literal.strip("'"))


def read_layout(conn: Connection, table: str) -> Layout:
    """The table's partitions as the catalog holds them (bounds read in UTC)."""
    conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    layout = Layout(table)
    rows = conn.execute(_TREE_SQL, {"table": table}).all()
    timeframe_of = {}
    for name, level, bound, _parent in rows:
        if level == 1:
            if bound == "DEFAULT":
                layout.default = name
            elif match := _LIST_BOUND.fullmatch(bound):
                layout.lists[match.group(1)] = name
                timeframe_of[name] = match.group(1)
    for name, level, bound, parent in rows:
        timeframe = timeframe_of.get(parent)
        match = _RANGE_BOUND.fullmatch(bound) if level == 2 and timeframe is not None else None
        if match is None:
            continue
        start, end = _instant(match.group(1)), _instant(match.group(2))
        if f"_{_REST}_" in name[len(layout.lists[timeframe]):] or start is None or end is None:
            layout.rests.setdefault(timeframe, []).append(Rest(start, end, name))
        else:
            layout.spans.setdefault(timeframe, []).append((Span(start, end), name))
    for spans in layout.spans.values():
        spans.sort()
    for rests in layout.rests.values():
        rests.sort(key=lambda rest: (rest.start is not None, rest.start or datetime.min))
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
    to `ahead` spans later and those rows already wait in a default or rest partition for, minus what exists."""
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


def create_partition(conn: Connection, table: str, creation: Creation) -> str:
    """Create one partition: a timeframe's own (its rows moved out of the table's default), or a span
    split out of the rest partition that covers its time (its rows moved into it); its name.

    The rest partition is detached for the split and attached again around the new span, all in
    this transaction, so no write sees the timeframe without a partition for its row.
    """
    layout = read_layout(conn, table)
    _run(conn, sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
    if creation.span is None:
        return _create_timeframe(conn, layout, creation.timeframe)
    timeframe, span = creation.timeframe, creation.span
    name = partition_name(table, timeframe, span.start)
    parent = sql.Identifier(SCHEMA, layout.lists[timeframe])
    rest = next((rest for rest in layout.rests.get(timeframe, []) if rest.holds(span)), None)
    if rest is None:  # a layout made by hand, without rest partitions: the span alone
        _run(conn, sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(
            sql.Identifier(SCHEMA, name), parent, _range(span.start, span.end)))
        return name
    held = sql.Identifier(SCHEMA, rest.name)
    _run(conn, sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent, held))
    _move_into(conn, table, name, rest.name, sql.SQL("ts >= {} AND ts < {}").format(
        sql.Literal(span.start), sql.Literal(span.end)))
    _attach(conn, parent, name, span.start, span.end)
    if rest.end is None or span.end < rest.end:  # the time after the span gets a rest partition of its own
        after = partition_name(table, timeframe, span.end, rest=True)
        _move_into(conn, table, after, rest.name, sql.SQL("ts >= {}").format(sql.Literal(span.end)))
        _attach(conn, parent, after, span.end, rest.end)
    if rest.start is None or rest.start < span.start:
        _attach(conn, parent, rest.name, rest.start, span.start)
    else:  # the span starts where the rest partition did: nothing of it is left
        _run(conn, sql.SQL("DROP TABLE {}").format(held))
    return name


def _create_timeframe(conn: Connection, layout: Layout, timeframe: str) -> str:
    table = layout.table
    name = partition_name(table, timeframe)
    target = sql.Identifier(SCHEMA, name)
    _run(conn, sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (ts)")
         .format(target, sql.Identifier(table)))
    _run(conn, sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (MINVALUE) TO (MAXVALUE)").format(
        sql.Identifier(SCHEMA, partition_name(table, timeframe, rest=True)), target))
    if layout.default is not None:
        # Locked against writes first: a row of this timeframe written to the default between the move
        # and the attach would make the attach fail.
        source = sql.Identifier(SCHEMA, layout.default)
        _run(conn, sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(source))
        _run(conn, sql.SQL("WITH moved AS (DELETE FROM {} WHERE timeframe = {} RETURNING *) "
                           "INSERT INTO {} SELECT * FROM moved").format(source, sql.Literal(timeframe), target))
    _run(conn, sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
        sql.Identifier(table), target, sql.Literal(timeframe)))
    return name


def drop_span(conn: Connection, table: str, name: str) -> str:
    """Drop one span and its rows (one timeframe's bars of one period, nothing else); its name.

    The rest partition before it grows over its time, so a late write there still finds a partition,
    and expired spans leave no partitions behind.
    """
    layout = read_layout(conn, table)
    _run(conn, sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
    timeframe, span = next((timeframe, span) for timeframe, spans in layout.spans.items()
                           for span, held in spans if held == name)
    parent = sql.Identifier(SCHEMA, layout.lists[timeframe])
    before = next((rest for rest in layout.rests.get(timeframe, []) if rest.end == span.start), None)
    if before is not None:
        _run(conn, sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent, sql.Identifier(SCHEMA, before.name)))
    _run(conn, sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, name)))
    if before is not None:
        _attach(conn, parent, before.name, before.start, span.end)
    else:
        _run(conn, sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(
            sql.Identifier(SCHEMA, partition_name(table, timeframe, span.start, rest=True)), parent,
            _range(span.start, span.end)))
    return name


def _range(start: datetime | None, end: datetime | None) -> sql.Composable:
    return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(
        sql.SQL("MINVALUE") if start is None else sql.Literal(start),
        sql.SQL("MAXVALUE") if end is None else sql.Literal(end))


def _attach(conn: Connection, parent: sql.Identifier, name: str, start: datetime | None, end: datetime | None) -> None:
    _run(conn, sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
        parent, sql.Identifier(SCHEMA, name), _range(start, end)))


def _move_into(conn: Connection, table: str, name: str, source: str, rows: sql.Composable) -> None:
    """A new standalone table `name` shaped like `table`, holding the rows of `source` that match `rows`."""
    target = sql.Identifier(SCHEMA, name)
    _run(conn, sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
        target, sql.Identifier(table)))
    _run(conn, sql.SQL("WITH moved AS (DELETE FROM {} WHERE {} RETURNING *) INSERT INTO {} SELECT * FROM moved")
         .format(sql.Identifier(SCHEMA, source), rows, target))


def build_layout(conn: Connection, table: str, timeframes: Iterable[str], occupied: dict[str, set[datetime]],
                 interval: PartitionInterval, ahead: int, now: datetime) -> list[str]:
    """Create, in the caller's transaction, every partition `table` needs for `occupied` spans and
    `ahead` spans past now (a migration lays out the table before it moves rows in); their names."""
    created = []
    for only_timeframes in (True, False):  # a timeframe's own partition first: its spans attach to it
        layout = read_layout(conn, table)
        for creation in plan_creations(layout, timeframes, occupied, interval, ahead, now):
            if (creation.span is None) == only_timeframes:
                created.append(create_partition(conn, table, creation))
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
    # Two passes: a timeframe's own partition first, so the second pass finds its rest partition to split.
    for only_timeframes in (True, False):
        with conn.begin():
            layout = read_layout(conn, table)
            waiting = [(SCHEMA, name) for name in [layout.default, *layout.rest_partitions()] if name]
            occupied = span_starts(conn, waiting, interval)
        for creation in plan_creations(layout, timeframes, occupied, interval, ahead, now):
            if (creation.span is None) == only_timeframes:
                _step(conn, report.created, report.deferred, create_partition, table, creation)
    with conn.begin():
        layout = read_layout(conn, table)
    for name in expired_partitions(layout, retention, now):
        _step(conn, report.dropped, report.deferred, drop_span, table, name)
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
