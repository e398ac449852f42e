"""Read-only views of stored data: instruments, candles, signals and recent runs."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from services.api.errors import ApiError
from services.api.routes.deps import deps
from services.api.routes.params import (
    boolean_param,
    check_order,
    choice_param,
    instant_param,
    limit_param,
    name_param,
    read_query,
    symbol_param,
    timeframe_param,
)
from services.core.pipeline.runs import KINDS, RUN_STATES
from services.core.store.instruments import find_instrument

__all__ = ["read_routes", "iso_utc", "CANDLE_LIMIT", "SIGNAL_LIMIT", "RUN_LIMIT"]

read_routes = Blueprint("read", __name__)

# (default, maximum) rows per response: enough for a chart, small enough to stay one quick query.
CANDLE_LIMIT = (500, 5000)
SIGNAL_LIMIT = (100, 5000)
RUN_LIMIT = (50, 500)


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC whatever the database session's time zone."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def _number(value: float | None) -> float | None:
    # JSON has no NaN or Infinity; a client parser would choke on them.
    return value if value is None or math.isfinite(value) else None


@read_routes.get("/api/instruments")
def list_instruments() -> Response:
    """Every instrument ever ingested, with its timeframes; `active` narrows to (in)active ones."""
    params = read_query(("active",))
    where, binds = "", {}
    if "active" in params:
        where, binds = "WHERE active = :active", {"active": boolean_param(params["active"], "active")}
    with deps().engine.connect() as conn:
        rows = conn.execute(text(f"""SELECT id, exchange, symbol, timeframes, active, created_at
                                       FROM instruments {where} ORDER BY exchange, symbol"""), binds).mappings().all()
    instruments = [{**row, "timeframes": list(row["timeframes"]), "created_at": iso_utc(row["created_at"])}
                   for row in rows]
    return jsonify({"count": len(instruments), "instruments": instruments})


@read_routes.get("/api/candles")
def list_candles() -> Response:
    """The newest `limit` candles of one symbol and timeframe in [since, until), oldest first."""
    settings = deps().settings
    params = read_query(("symbol", "timeframe", "exchange", "since", "until", "limit"))
    if "symbol" not in params:
        raise ApiError(400, "symbol is required, e.g. symbol=BTC/USD", "symbol")
    symbol = symbol_param(params["symbol"])
    exchange = name_param(params.get("exchange", settings.exchange), "exchange")
    timeframe = timeframe_param(params.get("timeframe", settings.timeframes[0]))
    since = instant_param(params["since"], "since") if "since" in params else None
    until = instant_param(params["until"], "until") if "until" in params else None
    check_order(since, until)
    limit = limit_param(params.get("limit"), *CANDLE_LIMIT)

    with deps().engine.connect() as conn:
        instrument_id = find_instrument(conn, exchange, symbol)
        if instrument_id is None:
            raise ApiError(404, f"no instrument {symbol} on {exchange}; see GET /api/instruments", "symbol")
        rows = conn.execute(text(f"""
            SELECT ts, open, high, low, close, volume, is_closed FROM candles
             WHERE instrument_id = :i AND timeframe = :tf
                   {'AND ts >= :since' if since else ''} {'AND ts < :until' if until else ''}
             ORDER BY ts DESC LIMIT :limit"""),
            {"i": instrument_id, "tf": timeframe, "since": since, "until": until, "limit": limit}).all()
    candles = [{"ts": iso_utc(row.ts), "open": _number(row.open), "high": _number(row.high), "low": _number(row.low),
                "close": _number(row.close), "volume": _number(row.volume), "is_closed": row.is_closed}
               for row in reversed(rows)]
    return jsonify({"exchange": exchange, "symbol": symbol, "timeframe": timeframe,
                    "count": len(candles), "candles": candles})


@read_routes.get("/api/signals")
def list_signals() -> Response:
    """Stored signals, newest first, optionally narrowed by symbol, timeframe, strategy and since."""
    settings = deps().settings
    params = read_query(("symbol", "timeframe", "strategy", "exchange", "since", "limit"))
    filters = {"exchange": name_param(params.get("exchange", settings.exchange), "exchange")}
    if "symbol" in params:
        filters["symbol"] = symbol_param(params["symbol"])
    if "timeframe" in params:
        filters["timeframe"] = timeframe_param(params["timeframe"])
    if "strategy" in params:
        filters["strategy"] = name_param(params["strategy"], "strategy")
    if "since" in params:
        filters["since"] = instant_param(params["since"], "since")
    limit = limit_param(params.get("limit"), *SIGNAL_LIMIT)

    columns = {"exchange": "i.exchange = :exchange", "symbol": "i.symbol = :symbol",
               "timeframe": "s.timeframe = :timeframe", "strategy": "s.strategy = :strategy", "since": "s.ts >= :since"}
    where = " AND ".join(columns[name] for name in filters)
    with deps().engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT i.exchange, i.symbol, s.timeframe, s.ts, s.strategy, s.side, s.strength, s.price, s.inputs,
                   s.created_at
              FROM signals s JOIN instruments i ON i.id = s.instrument_id
             WHERE {where}
             ORDER BY s.ts DESC, i.symbol, s.timeframe, s.strategy LIMIT :limit"""),
            {**filters, "limit": limit}).mappings().all()
    signals = [{**row, "ts": iso_utc(row["ts"]), "created_at": iso_utc(row["created_at"]),
                "strength": _number(row["strength"]), "price": _number(row["price"])} for row in rows]
    return jsonify({"count": len(signals), "signals": signals})


@read_routes.get("/api/runs")
def list_runs() -> Response:
    """Recent pipeline runs, newest first; per-stage detail is at GET /api/manual-update/?task_id=…"""
    params = read_query(("state", "task", "limit"))
    filters = {}
    if "state" in params:
        filters["state"] = choice_param(params["state"].upper(), "state", RUN_STATES)
    if "task" in params:
        filters["kind"] = choice_param(params["task"], "task", KINDS)
    limit = limit_param(params.get("limit"), *RUN_LIMIT)

    where = " AND ".join(f"{column} = :{column}" for column in filters) or "true"
    with deps().engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT id, kind, scope, state, errors, created_at, started_at, finished_at FROM pipeline_runs
             WHERE {where} ORDER BY created_at DESC, id LIMIT :limit"""), {**filters, "limit": limit}).mappings().all()
    runs = [{"task_id": row["id"], "task_type": row["kind"], "scope": row["scope"], "status": row["state"],
             "errors": row["errors"], "created_at": iso_utc(row["created_at"]),
             "started_at": iso_utc(row["started_at"]), "finished_at": iso_utc(row["finished_at"])} for row in rows]
    return jsonify({"count": len(runs), "runs": runs})
