"""A lean ccxt market list: each market's raw exchange payload (`info`) dropped as the list loads."""

from __future__ import annotations

__all__ = ["drop_market_payloads"]


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
