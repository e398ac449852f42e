"""Binance spot's public REST dialect: the routes ccxt's binance client calls."""

from __future__ import annotations

import json

from flask import Flask, request

from .controller import Simulator
from .faults import BINANCE_FIELDS, RequestContext
from .klines import BinanceError, kline_rows, parse_query, select_bars
from .markets import exchange_info
from .replies import dumps, json_response, reply

__all__ = ["PREFIXES", "register"]

PREFIXES = ("/api/v3/", "/fapi/", "/dapi/")  # what a request for this dialect starts with
_DERIVATIVE_INFO = ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo")


def register(app: Flask, sim: Simulator) -> None:
    """Add Binance's routes to the simulator's app."""

    @app.errorhandler(BinanceError)
    def _binance_error(err: BinanceError):
        return json_response(err.body(), err.status)

    @app.get("/api/v3/ping")
    def ping():
        return reply(sim, RequestContext(request.path), lambda: "{}")

    @app.get("/api/v3/time")
    def server_time():
        return reply(sim, RequestContext(request.path), lambda: dumps({"serverTime": sim.now_ms()}))

    @app.get("/api/v3/exchangeInfo")
    def spot_exchange_info():
        wanted = _requested_symbols(request.args)
        listed = sim.markets
        markets = list(listed.values())
        if wanted is not None:
            if any(s not in listed for s in wanted):
                raise BinanceError(-1121, "Invalid symbol.")
            markets = [listed[s] for s in wanted]
        ctx = RequestContext(request.path, wanted[0] if wanted and len(wanted) == 1 else None)
        halted = sim.listing.halted
        return reply(sim, ctx, lambda: dumps(exchange_info(markets, sim.now_ms(), halted)))

    for route in _DERIVATIVE_INFO:
        # Served empty so ccxt's default load_markets (spot + linear + inverse) succeeds.
        app.add_url_rule(route, route, lambda: reply(sim, RequestContext(request.path),
                                                     lambda: dumps(exchange_info([], sim.now_ms()))))

    @app.get("/api/v3/klines")
    @app.get("/api/v3/uiKlines")
    def klines():
        listed = sim.markets
        query = parse_query(request.args, set(listed))
        market, now = listed[query.symbol], sim.now_ms()
        path = sim.price_path(query.symbol, query.interval)
        plain = RequestContext(request.path, query.symbol, query.interval)
        gaps = sim.faults.gap_filter(plain)
        bars = select_bars(path, query, now, gaps if gaps.rules else None)
        if not bars:
            return reply(sim, plain, lambda: "[]")
        first, last = bars[0], bars[-1]
        candles = path.candles(first, last - first + 1, now)
        ctx = RequestContext(request.path, query.symbol, query.interval,
                             int(candles.open_ms[0]), int(candles.open_ms[-1]))

        def page() -> str:
            rows = kline_rows(candles, market.tick_size, market.step_size, market.hourly_volume)
            opens = candles.open_ms.tolist()
            if len(rows) != len(bars):  # gaps: keep only the bars that were selected
                rows, opens = [rows[b - first] for b in bars], [opens[b - first] for b in bars]
            sim.faults.record_use(gaps.used)
            rows = sim.faults.spoil(ctx, rows, opens, f"{market.tick_size:.8f}", BINANCE_FIELDS)
            return "[" + ",".join(rows) + "]"

        return reply(sim, ctx, page)


def _requested_symbols(args) -> list[str] | None:
    if args.get("symbol"):
        return [args["symbol"]]
    if args.get("symbols"):
        try:
            return [str(s) for s in json.loads(args["symbols"])]
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
    return None
