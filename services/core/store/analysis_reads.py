"""Reads of what the indicator stage stores, one series at a time: indicator values, patterns, levels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Column, Connection, RowMapping, Table, select

from services.core.models import INDICATOR_COLUMNS, IndicatorValues, Level, Pattern

__all__ = ["INDICATOR_FIELDS", "PATTERN_FIELDS", "LEVEL_FIELDS", "read_indicators", "read_patterns", "read_levels"]

# The per-bar values of indicator_values a reader may select: the indicators and the bar's regime.
INDICATOR_FIELDS = (*INDICATOR_COLUMNS, "regime")
PATTERN_FIELDS = ("ts", "pattern", "direction", "strength", "detected_at")
LEVEL_FIELDS = ("kind", "price", "touches", "strength", "first_ts", "last_ts", "computed_at")

_INDICATORS: Table = IndicatorValues.__table__
_PATTERNS: Table = Pattern.__table__
_LEVELS: Table = Level.__table__


def _series_rows(conn: Connection, table: Table, columns: Sequence[str], instrument_id: int, timeframe: str,
                 at: Column, since: datetime | None, until: datetime | None, order: Sequence,
                 limit: int) -> list[RowMapping]:
    """`columns` of one series with `at` in [since, until), the first `limit` in `order`."""
    query = select(*(table.c[name] for name in columns)).where(
        table.c.instrument_id == instrument_id, table.c.timeframe == timeframe)
    if since is not None:
        query = query.where(at >= since)
    if until is not None:
        query = query.where(at < until)
    return list(conn.execute(query.order_by(*order).limit(limit)).mappings())


def read_indicators(conn: Connection, instrument_id: int, timeframe: str, fields: Sequence[str],
                    since: datetime | None, until: datetime | None, limit: int) -> list[RowMapping]:
    """The newest `limit` bars in [since, until), oldest first: ts, `fields` (of INDICATOR_FIELDS), is_closed."""
    unknown = set(fields) - set(INDICATOR_FIELDS)
    if unknown:  # the names become column lookups: refuse anything not in the one list
        raise ValueError(f"not indicator fields: {sorted(unknown)}")
    ts = _INDICATORS.c.ts
    rows = _series_rows(conn, _INDICATORS, ("ts", *fields, "is_closed"), instrument_id, timeframe, ts, since, until,
                        (ts.desc(),), limit)
    return rows[::-1]


def read_patterns(conn: Connection, instrument_id: int, timeframe: str, since: datetime | None,
                  until: datetime | None, limit: int) -> list[RowMapping]:
    """The newest `limit` patterns completed in [since, until), oldest first (then by pattern name)."""
    ts, name = _PATTERNS.c.ts, _PATTERNS.c.pattern
    rows = _series_rows(conn, _PATTERNS, PATTERN_FIELDS, instrument_id, timeframe, ts, since, until,
                        (ts.desc(), name.desc()), limit)
    return rows[::-1]


def read_levels(conn: Connection, instrument_id: int, timeframe: str, since: datetime | None,
                until: datetime | None, limit: int) -> list[RowMapping]:
    """The `limit` strongest current levels last touched in [since, until), strongest first (then by price)."""
    levels = _LEVELS.c
    return _series_rows(conn, _LEVELS, LEVEL_FIELDS, instrument_id, timeframe, levels.last_ts, since, until,
                        (levels.strength.desc(), levels.price), limit)
