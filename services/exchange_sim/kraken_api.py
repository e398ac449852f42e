"""Kraken's public REST dialect: the routes ccxt's kraken client calls, answered in Kraken's envelope."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, request

from .controller import Simulator
from .faults import KRAKEN_FIELDS, RequestContext
from .kraken import (
    KrakenError,
    KrakenPair,
    asset_pairs,
    assets,
    kraken_pair,
    last_committed_s,
    ohlc_rows,
    parse_ohlc_query,
    select_ohlc_bars,
    server_time,
)
from .replies import dumps, json_response, reply

__all__ = ["PREFIXES", "register"]

PREFIXES = ("/0/public/", "/0/private/")  # what a request for this dialect starts with


def _ok(result: object) -> str:
    return dumps({"error": [], "result": result})


class _Pairs:
    """The listed markets under Kraken's names, rebuilt only when the listing changed."""

    def __init__(self, sim: Simulator):
        self._sim, self._listed, self._pairs, self._by_name = sim, None, [], {}

    def current(self) -> tuple[list[KrakenPair], dict[str, KrakenPair]]:
        listed = self._sim.markets  # the same dict until the listing changes
        if listed is not self._listed:
            pairs = [kraken_pair(m) for m in listed.values()]
            # Kraken accepts a pair by its key (XXBTZUSD) or its altname (XBTUSD).
            by_name = {p.altname: p for p in pairs} | {p.key: p for p in pairs}
            self._listed, self._pairs, self._by_name = listed, pairs, by_name
        return self._pairs, self._by_name


def _names(args, key: str) -> list[str] | None:
    value = args.get(key)
    return None if not value else [name.strip() for name in value.split(",")]


def register(app: Flask, sim: Simulator) -> None:
    """Add Kraken's public routes to the simulator's app."""
    pairs = _Pairs(sim)

    @app.errorhandler(KrakenError)
    def _kraken_error(err: KrakenError):
        return json_response(err.body(), 200)  # Kraken reports request errors with HTTP 200

    @app.get("/0/public/Time")
    def kraken_time():
        return reply(sim, RequestContext(request.path), lambda: _ok(server_time(sim.now_ms())))

    @app.get("/0/public/SystemStatus")
    def system_status():
        now = datetime.fromtimestamp(sim.now_ms() // 1000, UTC).isoformat().replace("+00:00", "Z")
        return reply(sim, RequestContext(request.path), lambda: _ok({"status": "online", "timestamp": now}))

    @app.get("/0/public/Assets")
    def kraken_assets():
        every = assets(pairs.current()[0])
        wanted = _names(request.args, "asset")
        if wanted is not None:
            by_name = {entry["altname"]: asset_id for asset_id, entry in every.items()} | {a: a for a in every}
            if any(name not in by_name for name in wanted):
                raise KrakenError("EQuery:Unknown asset")
            every = {by_name[name]: every[by_name[name]] for name in wanted}
        return reply(sim, RequestContext(request.path), lambda: _ok(every))

    @app.get("/0/public/AssetPairs")
    def kraken_asset_pairs():
        listed, by_name = pairs.current()
        wanted = _names(request.args, "pair")
        if wanted is not None:
            if any(name not in by_name for name in wanted):
                raise KrakenError("EQuery:Unknown asset pair")
            listed = [by_name[name] for name in wanted]
        ctx = RequestContext(request.path, listed[0].market.id if wanted and len(listed) == 1 else None)
        halted = sim.listing.halted
        return reply(sim, ctx, lambda: _ok(asset_pairs(listed, halted)))

    @app.get("/0/public/OHLC")
    def ohlc():
        query = parse_ohlc_query(request.args, pairs.current()[1])
        market, now = query.pair.market, sim.now_ms()
        path = sim.price_path(market.id, query.interval)
        plain = RequestContext(request.path, market.id, query.interval)
        gaps = sim.faults.gap_filter(plain)
        bars = select_ohlc_bars(path, query, now, gaps if gaps.rules else None)
        last = last_committed_s(query, now)
        if not bars:
            return reply(sim, plain, lambda: _ok({query.pair.key: [], "last": last}))
        first = bars[0]
        candles = path.candles(first, bars[-1] - first + 1, now)
        ctx = RequestContext(request.path, market.id, query.interval,
                             int(candles.open_ms[0]), int(candles.open_ms[-1]))

        def page() -> str:
            rows = ohlc_rows(candles, query.pair)
            opens = candles.open_ms.tolist()
            if len(rows) != len(bars):  # gaps: keep only the bars that were selected
                rows, opens = [rows[b - first] for b in bars], [opens[b - first] for b in bars]
            sim.faults.record_use(gaps.used)
            rows = sim.faults.spoil(ctx, rows, opens, f"{market.tick_size:.8f}", KRAKEN_FIELDS)
            # Rows are already JSON text: the envelope is put around them, not re-encoded.
            candles_json = "[" + ",".join(rows) + "]"
            return '{"error":[],"result":{' + dumps(query.pair.key) + ":" + candles_json + ',"last":' + str(last) + "}}"

        return reply(sim, ctx, page)
