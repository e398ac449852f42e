"""Read-only views of stored data: candles, signals and recent runs."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from services.api.formats import Listing, respond
from services.api.query import with_query
from services.api.routes.deps import deps
from services.api.routes.params import CandlesQuery, RunsQuery, SignalsQuery
from services.api.routes.series import find_series
from services.api.values import finite, iso_utc
from services.core.pipeline.records import read_runs
from services.core.pipeline.runs import run_summary

__all__ = ["read_routes", "iso_utc", "CANDLE_FIELDS", "SIGNAL_FIELDS"]

# bandit B608 (marked nosec below): WHERE clauses are joined from this module's fixed fragments,
# chosen by which validated filters are present; every value is a bound parameter.

read_routes = Blueprint("read", __name__)

# Each row's fields in order: the JSON keys, and the CSV header.
CANDLE_FIELDS = ("ts", "open", "high", "low", "close", "volume", "is_closed")
SIGNAL_FIELDS = ("exchange", "symbol", "timeframe", "ts", "strategy", "side", "strength", "price", "inputs",
                 "created_at")


@read_routes.get("/api/candles")
@with_query(CandlesQuery)
def list_candles(query: CandlesQuery) -> Response:
    """The newest `limit` candles of one symbol and timeframe in [since, until), oldest first."""
    since, until = query.since, query.until
    with deps().engine.connect() as conn:
        series = find_series(conn, query)
        rows = conn.execute(text(f"""
            SELECT ts, open, high, low, close, volume, is_closed FROM candles
             WHERE instrument_id = :i AND timeframe = :tf
                   {'AND ts >= :since' if since else ''} {'AND ts < :until' if until else ''}
             ORDER BY ts DESC LIMIT :limit"""),  # nosec B608
            {"i": series.instrument_id, "tf": series.timeframe, "since": since, "until": until,
             "limit": query.limit}).all()
    candles = [{"ts": iso_utc(row.ts), "open": finite(row.open), "high": finite(row.high), "low": finite(row.low),
                "close": finite(row.close), "volume": finite(row.volume), "is_closed": row.is_closed}
               for row in reversed(rows)]
    body = {**series.head(), "count": len(candles), "candles": candles}
    return respond(query.format, Listing(body, "candles", CANDLE_FIELDS, (series.symbol, series.timeframe)))


@read_routes.get("/api/signals")
@with_query(SignalsQuery)
def list_signals(query: SignalsQuery) -> Response:
    """Stored signals, newest first, optionally narrowed by symbol, timeframe, strategy and since."""
    filters = {"exchange": query.exchange or deps().settings.exchange,
               **query.model_dump(include={"symbol", "timeframe", "strategy", "since"}, exclude_none=True)}

    columns = {"exchange": "i.exchange = :exchange", "symbol": "i.symbol = :symbol",
               "timeframe": "s.timeframe = :timeframe", "strategy": "s.strategy = :strategy", "since": "s.ts >= :since"}
    where = " AND ".join(columns[name] for name in filters)
    with deps().engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT i.exchange, i.symbol, s.timeframe, s.ts, s.strategy, s.side, s.strength, s.price, s.inputs,
                   s.created_at
              FROM signals s JOIN instruments i ON i.id = s.instrument_id
             WHERE {where}
             ORDER BY s.ts DESC, i.symbol, s.timeframe, s.strategy LIMIT :limit"""),  # nosec B608
            {**filters, "limit": query.limit}).mappings().all()
    signals = [{**row, "ts": iso_utc(row["ts"]), "created_at": iso_utc(row["created_at"]),
                "strength": finite(row["strength"]), "price": finite(row["price"])} for row in rows]
    return respond(query.format, Listing({"count": len(signals), "signals": signals}, "signals", SIGNAL_FIELDS,
                                         (query.symbol, query.timeframe)))


@read_routes.get("/api/runs")
@with_query(RunsQuery)
def list_runs(query: RunsQuery) -> Response:
    """Runs by state, kind, symbol, exchange and creation time, newest first; per-stage detail at GET /api/runs/<id>."""
    with deps().engine.connect() as conn:
        exchange = None if query.exchange is None else (query.exchange, deps().settings.exchange)
        rows = read_runs(conn, state=query.state, kind=query.task, symbol=query.symbol, exchange=exchange,
                         since=query.since, until=query.until, limit=query.limit)
    return jsonify({"count": len(rows), "runs": [run_summary(row) for row in rows]})
