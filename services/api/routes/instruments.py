"""The universe over HTTP: list, add and change instruments, and read the exchange's market list."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.api.auth import require_token
from services.api.body import json_body
from services.api.errors import ApiError
from services.api.query import NoParameters, with_query
from services.api.routes.deps import deps
from services.api.routes.params import InstrumentsQuery, MarketsQuery
from services.api.values import iso_utc
from services.core.store.instruments import change_instrument, instrument_view, read_instrument, read_instruments
from services.core.store.markets import read_markets
from services.core.store.universe import UniverseError, add_instrument, require_listed
from services.core.timeframe import Timeframe
from services.core.venues import PAIR_RE

__all__ = ["instrument_routes", "Addition", "Change"]

log = logging.getLogger(__name__)

instrument_routes = Blueprint("instruments", __name__)

Body = TypeVar("Body", bound=BaseModel)
# More timeframes than this on one instrument is a typo, not a plan.
MAX_TIMEFRAMES = 16


def _timeframes(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("give at least one timeframe, e.g. [\"1h\"]")
    for name in value:
        Timeframe.parse(name[:40])  # its ValueError says what a timeframe looks like
    return list(dict.fromkeys(value))  # each once, in the order given


class Addition(BaseModel):
    """POST /api/instruments: a listed market to add, and the timeframes to keep (default TIMEFRAMES)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    symbol: str = Field(max_length=64, description="BASE/QUOTE as the exchange lists it", examples=["SOL/USD"])
    timeframes: list[str] | None = Field(None, max_length=MAX_TIMEFRAMES, examples=[["1h", "4h"]])

    _timeframes_valid = field_validator("timeframes")(_timeframes)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not PAIR_RE.fullmatch(value):
            raise ValueError(f"malformed symbol {value[:40]!r}: expected BASE/QUOTE in capitals, e.g. SOL/USD")
        return value


class Change(BaseModel):
    """PATCH /api/instruments/<exchange>/<symbol>: retire or re-activate it, or replace its timeframes."""

    model_config = ConfigDict(extra="forbid", strict=True)

    active: bool | None = Field(None, description="false retires it (its data stays), true re-activates it")
    timeframes: list[str] | None = Field(None, max_length=MAX_TIMEFRAMES, examples=[["1h", "1d"]])

    _timeframes_valid = field_validator("timeframes")(_timeframes)


def _parsed(model: type[Body], body: object) -> Body:
    """The body as `model`; a 400 naming the first bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(body).__name__}", "body")
    nulls = [name for name, value in body.items() if value is None]
    if nulls:  # leaving a field out means "unchanged"; a null accepted and ignored would hide a mistake
        raise ApiError(400, f"{str(nulls[0])[:40]} cannot be null; leave it out instead", str(nulls[0])[:40])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "body"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field {field[:40]!r}; fields: {', '.join(model.model_fields)}"
        raise ApiError(400, f"{field[:40]}: {message}", field[:40]) from None


@contextmanager
def _universe_errors() -> Iterator[None]:
    try:
        yield
    except UniverseError as exc:
        raise ApiError(exc.status, str(exc), exc.parameter) from None


@instrument_routes.get("/api/instruments")
@with_query(InstrumentsQuery)
def list_instruments(query: InstrumentsQuery) -> Response:
    """The universe: every instrument with its timeframes, where it came from, when it was added and retired."""
    with deps().engine.connect() as conn:
        rows = read_instruments(conn, active=query.active, exchange=query.exchange, quote=query.quote)
    return jsonify({"count": len(rows), "instruments": [instrument_view(row) for row in rows]})


@instrument_routes.post("/api/instruments")
@require_token
@with_query(NoParameters)
def add(query: NoParameters) -> tuple[Response, int]:
    """Add a market the exchange lists to the universe; the next run without a symbol covers it."""
    addition = _parsed(Addition, json_body())
    settings = deps().settings
    with _universe_errors(), deps().engine.begin() as conn:
        row = add_instrument(conn, settings.exchange, addition.symbol, addition.timeframes or settings.timeframes,
                             "api")
    log.info("instrument %s on %s added over the API (%s)", row["symbol"], row["exchange"], ",".join(row["timeframes"]))
    return jsonify(instrument_view(row)), 201


@instrument_routes.patch("/api/instruments/<exchange>/<path:symbol>")
@require_token
@with_query(NoParameters)
def change(exchange: str, symbol: str, query: NoParameters) -> Response:
    """Retire or re-activate an instrument, or replace its timeframes."""
    patch = _parsed(Change, json_body())
    if patch.active is None and patch.timeframes is None:
        raise ApiError(400, "nothing to change: give active and/or timeframes", "body")
    with deps().engine.begin() as conn:
        if patch.active and (current := read_instrument(conn, exchange, symbol)) is not None \
                and current["market_gone_at"] is not None:
            with _universe_errors():  # a delisted market cannot come back until the exchange lists it again
                require_listed(conn, exchange, [symbol])
        row = change_instrument(conn, exchange, symbol, active=patch.active, timeframes=patch.timeframes)
    if row is None:
        raise ApiError(404, f"no instrument {symbol[:64]!r} on {exchange[:64]!r}; see GET /api/instruments", "symbol")
    log.info("instrument %s on %s changed over the API: %s", symbol, exchange, patch.model_dump(exclude_none=True))
    return jsonify(instrument_view(row))


@instrument_routes.get("/api/markets")
@with_query(MarketsQuery)
def list_markets(query: MarketsQuery) -> Response:
    """The exchange's markets as its last market sync recorded them (the list instruments are added from)."""
    exchange = query.exchange or deps().settings.exchange
    with deps().engine.connect() as conn:
        rows = read_markets(conn, exchange, quote=query.quote, market_type=query.type, listed=query.listed)
    shown = rows[:query.limit]
    markets = [{**row, **{name: iso_utc(row[name]) for name in ("first_seen_at", "last_seen_at", "gone_at")}}
               for row in shown]
    return jsonify({"exchange": exchange, "count": len(markets), "total": len(rows), "markets": markets})
