"""Read-only views of what the indicator stage stores: indicator values, patterns and levels of one series."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, Response

from services.api.formats import Listing, respond
from services.api.query import with_query
from services.api.routes.deps import deps
from services.api.routes.params import IndicatorsQuery, LevelsQuery, PatternsQuery
from services.api.routes.series import find_series
from services.api.values import finite, iso_utc
from services.core.models import INDICATOR_COLUMNS
from services.core.store.analysis_reads import (
    INDICATOR_FIELDS,
    LEVEL_FIELDS,
    PATTERN_FIELDS,
    read_indicators,
    read_levels,
    read_patterns,
)

__all__ = ["analysis_routes"]

analysis_routes = Blueprint("analysis", __name__)

# How a stored column is shown; one not named here passes through as stored (text, integers, booleans).
_SHOWN = {**dict.fromkeys(("ts", "first_ts", "last_ts", "detected_at", "computed_at"), iso_utc),
          **dict.fromkeys(("strength", "price", *INDICATOR_COLUMNS), finite)}


def _as_stored(value: object) -> object:
    return value


def _shown(row: Mapping[str, object]) -> dict[str, object]:
    return {name: _SHOWN.get(name, _as_stored)(value) for name, value in row.items()}


@analysis_routes.get("/api/indicators")
@with_query(IndicatorsQuery)
def list_indicators(query: IndicatorsQuery) -> Response:
    """The newest `limit` bars' indicator values of one series in [since, until), oldest first."""
    fields = query.columns or INDICATOR_FIELDS
    with deps().engine.connect() as conn:
        series = find_series(conn, query)
        rows = read_indicators(conn, series.instrument_id, series.timeframe, fields, query.since, query.until,
                               query.limit)
    bars = [_shown(row) for row in rows]
    body = {**series.head(), "columns": list(fields), "count": len(bars), "indicators": bars}
    return respond(query.format, Listing(body, "indicators", ("ts", *fields, "is_closed"),
                                         (series.symbol, series.timeframe)))


def _series_listing(query: PatternsQuery | LevelsQuery, read: Callable[..., list], key: str,
                    fields: tuple[str, ...]) -> Response:
    """One series' rows from `read(conn, instrument, timeframe, since, until, limit)`, as `key` in the body."""
    with deps().engine.connect() as conn:
        series = find_series(conn, query)
        rows = read(conn, series.instrument_id, series.timeframe, query.since, query.until, query.limit)
    shown = [_shown(row) for row in rows]
    body = {**series.head(), "count": len(shown), key: shown}
    return respond(query.format, Listing(body, key, fields, (series.symbol, series.timeframe)))


@analysis_routes.get("/api/patterns")
@with_query(PatternsQuery)
def list_patterns(query: PatternsQuery) -> Response:
    """The newest `limit` patterns of one series completed in [since, until), oldest first."""
    return _series_listing(query, read_patterns, "patterns", PATTERN_FIELDS)


@analysis_routes.get("/api/levels")
@with_query(LevelsQuery)
def list_levels(query: LevelsQuery) -> Response:
    """The `limit` strongest support/resistance levels of one series last touched in [since, until)."""
    return _series_listing(query, read_levels, "levels", LEVEL_FIELDS)
