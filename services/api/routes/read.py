"""Read-only views of stored data: candles, signals and recent runs."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from services.api.errors import ApiError
from services.api.query import with_query
from services.api.routes.deps import deps
from services.api.routes.params import CandlesQuery, RunsQuery, SignalsQuery
from services.core.pipeline.records import read_runs
from services.core.pipeline.runs import run_summary
from services.core.store.instruments import find_instrument

__all__ = ["read_routes", "iso_utc"]

# bandit B608 (marked nosec below): WHERE clauses are joined from this module's fixed fragments,
# chosen by which validated filters are present; every value is a bound parameter.

read_routes = Blueprint("read", __name__)


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC whatever the database session's time zone."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def _number(value: float | None) -> float | None:
    # JSON has no NaN or Infinity; a client parser would choke on them.
    return value if value is None or math.isfinite(value) else None


@read_routes.get("/api/candles")
@with_query(CandlesQuery)
def list_candles(query: CandlesQuery) -> Response:
    """The newest `limit` candles of one symbol and timeframe in [since, until), oldest first."""
    settings = deps().settings
    symbol, since, until = query.symbol, query.since, query.until
    exchange = query.exchange or settings.exchange
    timeframe = query.timeframe or settings.timeframes[0]

    with deps().engine.connect() as conn:
        instrument_id = find_instrument(conn, exchange, symbol)
        if instrument_id is None:
            raise ApiError(404, f"no instrument {symbol} on {exchange}; see GET /api/instruments", "symbol")
        rows = conn.execute(text(f"""
            SELECT ts, open, high, low, close, volume, is_closed FROM candles
             WHERE instrument_id = :i AND timeframe = :tf
                   {'AND ts >= :since' if since else ''} {'AND ts < :until' if until else ''}
             ORDER BY ts DESC LIMIT :limit"""),  # nosec B608
            {"i": instrument_id, "tf": timeframe, "since": since, "until": until, "limit": query.limit}).all()
    candles = [{"ts": iso_utc(row.ts), "open": _number(row.open), "high": _number(row.high), "low": _number(row.low),
                "close": _number(row.close), "volume": _number(row.volume), "is_closed": row.is_closed}
               for row in reversed(rows)]
    return jsonify({"exchange": exchange, "symbol": symbol, "timeframe": timeframe,
                    "count": len(candles), "candles": candles})


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
                "strength": _number(row["strength"]), "price": _number(row["price"])} for row in rows]
    return jsonify({"count": len(signals), "signals": signals})


@read_routes.get("/api/runs")
@with_query(RunsQuery)
def list_runs(query: RunsQuery) -> Response:
    """Runs by state, kind, symbol and creation time, newest first; per-stage detail is at GET /api/runs/<id>."""
    with deps().engine.connect() as conn:
        rows = read_runs(conn, state=query.state, kind=query.task, symbol=query.symbol, since=query.since,
                         until=query.until, limit=query.limit)
    return jsonify({"count": len(rows), "runs": [run_summary(row) for row in rows]})
