"""ccxt's market list: kept lean (each market's raw payload dropped as it loads), and read as market records."""

from __future__ import annotations

__all__ = ["drop_market_payloads", "market_record"]

# ccxt's precision keys an operator reads (their meaning, digits or tick size, follows the exchange's precisionMode).
_PRECISION = ("price", "amount", "cost", "base", "quote")


def drop_market_payloads(exchange):
    """Make exchange.load_markets() keep no market's `info` (the exchange's raw JSON for it); returns exchange.

    ccxt parses every field a candle request needs (id, type, spot/linear/inverse, ...) out of
    `info` into the market itself; the payload stays only for callers who want the raw data. At
    10,000 Binance markets it is most of the list's memory (filters, permissions, order types).
    It is dropped inside fetch_markets, before set_markets builds its copies, so the parsed
    response is garbage before the list is built. Only for exchanges whose candle calls do not
    read it (SourceCapabilities.reads_market_info).
    """
    original = exchange.fetch_markets

    def fetch_markets(params=None):
        markets = original({} if params is None else params)
        for market in markets:
            market["info"] = {}  # a dict, as ccxt's own code expects when it looks inside
        return markets

    exchange.fetch_markets = fetch_markets
    return exchange


def market_record(market: dict) -> dict:
    """One ccxt unified market as the markets table records it (core.store.markets.MARKET_FIELDS)."""
    precision = market.get("precision") or {}
    return {"symbol": market["symbol"], "market_id": str(market.get("id") or market["symbol"]),
            "base": market.get("base") or "", "quote": market.get("quote") or "",
            "type": market.get("type") or "spot", "active": market.get("active"),
            "precision": {key: precision[key] for key in _PRECISION if precision.get(key) is not None}}
