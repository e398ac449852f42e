"""The simulated spot markets: per-symbol price level, volatility, tick/lot sizes, exchangeInfo."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .rng import stream_key, uniforms

__all__ = ["DEFAULT_SYMBOLS", "Market", "make_market", "exchange_info", "usd_price", "decimal_step"]

DEFAULT_SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "BTC/USDT", "ETH/USDT", "SOL/USDT")

# Rough USD levels and yearly volatilities, so paths start where a reader expects them.
_USD_PRICE = {
    "BTC": 30_000.0, "ETH": 2_000.0, "SOL": 100.0, "BNB": 300.0, "XRP": 0.5, "ADA": 0.35,
    "DOGE": 0.08, "LTC": 80.0, "DOT": 6.0, "AVAX": 15.0, "LINK": 7.0, "TRX": 0.1,
    "USD": 1.0, "USDT": 1.0, "USDC": 1.0, "BUSD": 1.0, "FDUSD": 1.0, "DAI": 1.0,
    "EUR": 1.08, "GBP": 1.26,
}
_STABLE = {"USD", "USDT", "USDC", "BUSD", "FDUSD", "DAI"}
_ANNUAL_VOL = {"BTC": 0.55, "ETH": 0.70, "EUR": 0.07, "GBP": 0.08}
_HOURLY_USD_TURNOVER = {"BTC": 40e6, "ETH": 20e6, "SOL": 6e6}


@dataclass(frozen=True)
class Market:
    """One spot market as the simulator serves it."""

    symbol: str  # ccxt unified, "BTC/USD"
    id: str  # Binance id, "BTCUSD"
    base: str
    quote: str
    price: float  # level the path starts from and mean-reverts to, in quote units
    annual_vol: float
    hourly_volume: float  # typical base volume per hour
    tick_size: float
    step_size: float


def usd_price(asset: str) -> float:
    if asset in _USD_PRICE:
        return _USD_PRICE[asset]
    # An unknown asset still gets a stable, plausible level: 0.1 .. 300 USD.
    u = float(uniforms(stream_key("usd-price", asset), [0])[0])
    return float(10 ** (-1.0 + 3.5 * u))


def _annual_vol(asset: str) -> float:
    return 0.01 if asset in _STABLE else _ANNUAL_VOL.get(asset, 0.85)


def decimal_step(value: float) -> float:
    return float(f"{10.0 ** math.floor(math.log10(value)):.0e}")


def make_market(symbol: str) -> Market:
    """Market parameters for a ccxt-style 'BASE/QUOTE' symbol."""
    base, sep, quote = symbol.strip().upper().partition("/")
    if not sep or not base or not quote or not base.isalnum() or not quote.isalnum():
        raise ValueError(f"not a ccxt spot symbol (BASE/QUOTE): {symbol!r}")
    price = usd_price(base) / usd_price(quote)
    vol = math.hypot(_annual_vol(base), _annual_vol(quote))
    turnover = _HOURLY_USD_TURNOVER.get(base, 1e6)
    # Binance-like sizes: ~5 significant price digits (never coarser than a cent),
    # and a lot step worth roughly 0.1-1 quote units at the start price.
    tick = min(0.01, decimal_step(price) * 1e-4)
    step = min(1.0, max(1e-8, decimal_step(1.0 / price)))
    return Market(
        symbol=f"{base}/{quote}", id=base + quote, base=base, quote=quote, price=price,
        annual_vol=vol, hourly_volume=turnover / usd_price(base),
        tick_size=max(tick, 1e-8), step_size=step,
    )


def _fmt(value: float) -> str:
    return f"{value:.8f}"


def _symbol_entry(market: Market, trading: bool) -> dict:
    # Field names, order and filter set follow a real GET /api/v3/exchangeInfo entry.
    return {
        "symbol": market.id,
        "status": "TRADING" if trading else "BREAK",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _fmt(market.tick_size),
             "maxPrice": _fmt(market.price * 1000), "tickSize": _fmt(market.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": _fmt(market.step_size),
             "maxQty": "9000.00000000", "stepSize": _fmt(market.step_size)},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
             "maxQty": "100.00000000", "stepSize": "0.00000000"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
             "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
             "maxTrailingBelowDelta": 2000},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5",
             "bidMultiplierDown": "0.2", "askMultiplierUp": "5", "askMultiplierDown": "0.2",
             "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def exchange_info(markets: list[Market], server_time_ms: int, halted=frozenset()) -> dict:
    """Body of GET /api/v3/exchangeInfo for the given markets (ids in `halted` do not trade)."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": [_symbol_entry(m, m.id not in halted) for m in markets],
    }
