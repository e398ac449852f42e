"""Flask app speaking one exchange's public REST dialect (SIM_DIALECT), plus /_sim/ controls."""

from __future__ import annotations

from flask import Flask, Response, g, request

from . import binance_api, kraken_api
from .controller import Simulator, iso
from .replies import json_response

__all__ = ["DIALECT_ROUTES", "create_app"]

# Each dialect: the module whose register() adds its routes, and the path prefixes it owns.
DIALECT_ROUTES = {"binance": binance_api, "kraken": kraken_api}


def _admin_error(message: str) -> Response:
    return json_response({"error": message}, 400)


def create_app(sim: Simulator) -> Flask:
    """The HTTP app for one Simulator instance, speaking its dialect."""
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

    @app.errorhandler(404)
    def _not_found(_err):
        return Response(f"simulator: no route for {request.method} {request.path}{_other_dialect(sim)}\n", 404,
                        content_type="text/plain")

    DIALECT_ROUTES[sim.dialect].register(app, sim)
    _register_admin(app, sim)
    return app


def _other_dialect(sim: Simulator) -> str:
    """Why a path of another dialect is not served: the simulator speaks one per run."""
    for dialect, routes in DIALECT_ROUTES.items():
        if dialect != sim.dialect and request.path.startswith(routes.PREFIXES):
            return (f" (a {dialect} path; this simulator speaks the {sim.dialect} dialect:"
                    f" start it with SIM_DIALECT={dialect} / --dialect {dialect})")
    return ""


def _register_admin(app: Flask, sim: Simulator) -> None:
    """/_sim/: clock, markets, faults and request log, for tests and demo operators (never counted)."""

    @app.get("/_sim/state")
    def state():
        return json_response(sim.state())

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
        return json_response({"now_ms": now, "now": iso(now), "rate": sim.clock.rate})

    @app.route("/_sim/markets", methods=["GET", "POST", "DELETE"])
    def markets():
        if request.method != "GET":
            body = request.get_json(silent=True)
            symbols = body.get("symbols") if isinstance(body, dict) else None
            if not isinstance(symbols, list):
                return _admin_error('send {"symbols": ["BASE/QUOTE", ...]} (POST may add "active": false)')
            try:
                if request.method == "POST":
                    sim.list_markets(symbols, body.get("active", True))
                else:
                    sim.delist_markets(symbols)
            except ValueError as err:
                return _admin_error(str(err))
        return json_response({"markets": sim.listing.describe()})

    @app.delete("/_sim/markets/<path:symbol>")
    def delist_market(symbol: str):
        try:
            sim.delist_markets([symbol])
        except ValueError as err:
            return _admin_error(str(err))
        return json_response({"markets": sim.listing.describe()})

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
        return json_response({"rules": sim.faults.describe()})

    @app.route("/_sim/requests", methods=["GET", "DELETE"])
    def requests_seen():
        if request.method == "DELETE":
            sim.reset_requests()
        return json_response({"counts": sim.request_counts(), "recent": sim.recent_requests()})
