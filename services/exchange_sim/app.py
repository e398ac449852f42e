"""Flask app speaking Binance spot's public REST dialect, plus /_sim/ controls."""

from __future__ import annotations

import json
import time

from flask import Flask, Response, g, request

from .controller import Simulator, iso
from .faults import RequestContext, error_reply
from .klines import BinanceError, kline_rows, parse_query, select_bars
from .markets import exchange_info

__all__ = ["create_app"]

_JSON = "application/json;charset=UTF-8"
_DERIVATIVE_INFO = ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo")


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _json(obj: object, status: int = 200) -> Response:
    return Response(_dumps(obj), status, content_type=_JSON)


def _admin_error(message: str) -> Response:
    return _json({"error": message}, 400)


def create_app(sim: Simulator) -> Flask:
    """The HTTP app for one Simulator instance."""
    app = Flask("candleflow.exchange_sim")

    @app.before_request
    def _count_request():
        if not request.path.startswith("/_sim"):
            g.log_number = sim.record_request(request.path, request.query_string.decode())

    @app.after_request
    def _log_status(response: Response) -> Response:
        if "log_number" in g:
            sim.record_status(g.log_number, response.status_code)
        return response

    @app.errorhandler(BinanceError)
    def _binance_error(err: BinanceError):
        return _json(err.body(), err.status)

    @app.errorhandler(404)
    def _not_found(_err):
        return Response(f"simulator: no route for {request.method} {request.path}\n", 404,
                        content_type="text/plain")

    def reply(ctx: RequestContext, produce) -> Response:
        """Answer with produce() (JSON text) unless a fault rule fires for this request."""
        rule = sim.faults.request_fault(ctx)
        if rule is not None and rule.kind == "timeout":
            time.sleep(rule.seconds)  # longer than the client waits; it sees a read timeout
            rule = None
        if rule is None:
            return Response(produce(), 200, content_type=_JSON)
        normal = produce() if rule.kind == "malformed_json" else ""
        status, headers, body = error_reply(rule, normal, sim.now_ms())
        return Response(body, status, headers=headers)

    @app.get("/api/v3/ping")
    def ping():
        return reply(RequestContext(request.path), lambda: "{}")

    @app.get("/api/v3/time")
    def server_time():
        return reply(RequestContext(request.path), lambda: _dumps({"serverTime": sim.now_ms()}))

    @app.get("/api/v3/exchangeInfo")
    def spot_exchange_info():
        wanted = _requested_symbols(request.args)
        markets = list(sim.markets.values())
        if wanted is not None:
            if any(s not in sim.markets for s in wanted):
                raise BinanceError(-1121, "Invalid symbol.")
            markets = [sim.markets[s] for s in wanted]
        ctx = RequestContext(request.path, wanted[0] if wanted and len(wanted) == 1 else None)
        return reply(ctx, lambda: _dumps(exchange_info(markets, sim.now_ms())))

    for route in _DERIVATIVE_INFO:
        # Served empty so ccxt's default load_markets (spot + linear + inverse) succeeds.
        app.add_url_rule(route, route, lambda: reply(RequestContext(request.path),
                                                     lambda: _dumps(exchange_info([], sim.now_ms()))))

    @app.get("/api/v3/klines")
    @app.get("/api/v3/uiKlines")
    def klines():
        query = parse_query(request.args, set(sim.markets))
        path = sim.price_path(query.symbol, query.interval)
        market, now = sim.market(query.symbol), sim.now_ms()
        plain = RequestContext(request.path, query.symbol, query.interval)
        gaps = sim.faults.gap_filter(plain)
        bars = select_bars(path, query, now, gaps if gaps.rules else None)
        if not bars:
            return reply(plain, lambda: "[]")
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
            rows = sim.faults.spoil(ctx, rows, opens, f"{market.tick_size:.8f}")
            return "[" + ",".join(rows) + "]"

        return reply(ctx, page)

    _register_admin(app, sim)
    return app


def _requested_symbols(args) -> list[str] | None:
    if args.get("symbol"):
        return [args["symbol"]]
    if args.get("symbols"):
        try:
            return [str(s) for s in json.loads(args["symbols"])]
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
    return None


def _register_admin(app: Flask, sim: Simulator) -> None:
    """/_sim/: clock, faults and request log, for tests and demo operators (never counted)."""

    @app.get("/_sim/state")
    def state():
        return _json(sim.state())

    @app.route("/_sim/clock", methods=["GET", "POST"])
    def clock():
        body = request.get_json(silent=True) or {}
        try:
            if "now" in body:
                sim.set_now(body["now"], body.get("rate"))
            elif "rate" in body:
                sim.clock.set_rate(float(body["rate"]))
            if "advance" in body:
                sim.advance(float(body["advance"]))
        except (TypeError, ValueError) as err:
            return _admin_error(str(err))
        now = sim.now_ms()
        return _json({"now_ms": now, "now": iso(now), "rate": sim.clock.rate})

    @app.route("/_sim/faults", methods=["GET", "POST", "DELETE"])
    def faults():
        if request.method == "POST":
            body = request.get_json(silent=True)
            rules = body.get("rules") if isinstance(body, dict) else body
            if not isinstance(rules, list):
                return _admin_error('send a list of rules or {"rules": [...], "mode": "add"}')
            mode = body.get("mode", "replace") if isinstance(body, dict) else "replace"
            try:
                (sim.add_faults if mode == "add" else sim.set_faults)(rules)
            except ValueError as err:
                return _admin_error(str(err))
        elif request.method == "DELETE":
            sim.clear_faults()
        return _json({"rules": sim.faults.describe()})

    @app.route("/_sim/requests", methods=["GET", "DELETE"])
    def requests_seen():
        if request.method == "DELETE":
            sim.reset_requests()
        return _json({"counts": sim.request_counts(), "recent": sim.recent_requests()})
