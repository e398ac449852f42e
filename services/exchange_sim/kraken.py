"""Kraken's public REST dialect as pure functions: asset and pair names, AssetPairs/Assets bodies, OHLC."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from . import timeframes
from .klines import bar_columns
from .markets import Market, decimal_step, usd_price
from .prices import Candles, PricePath

__all__ = ["INTERVALS", "WINDOW", "KrakenError", "KrakenPair", "kraken_pair", "asset_pairs",
           "assets", "server_time", "OhlcQuery", "parse_ohlc_query", "select_ohlc_bars", "last_committed_s",
           "ohlc_rows"]

# OHLC `interval` in minutes -> the simulator's bar interval (the path every dialect serves).
INTERVALS = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d", 10080: "1w",
             21600: "15d"}
WINDOW = 720  # OHLC serves only the latest 720 bars, whatever `since` asks for

# ccxt code -> (Kraken asset id, altname); every other asset is named as ccxt names it.
# ccxt maps these back through kraken.commonCurrencies (XXBT, XBT -> BTC; XXDG, XDG -> DOGE; ZUSD -> USD).
_ASSETS = {
    "BTC": ("XXBT", "XBT"), "ETH": ("XETH", "ETH"), "DOGE": ("XXDG", "XDG"), "LTC": ("XLTC", "LTC"),
    "XRP": ("XXRP", "XRP"), "XLM": ("XXLM", "XLM"), "XMR": ("XXMR", "XMR"), "ETC": ("XETC", "ETC"),
    "ZEC": ("XZEC", "ZEC"), "USD": ("ZUSD", "USD"), "EUR": ("ZEUR", "EUR"), "GBP": ("ZGBP", "GBP"),
    "JPY": ("ZJPY", "JPY"), "CAD": ("ZCAD", "CAD"), "AUD": ("ZAUD", "AUD"),
}
_FIAT = {"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF"}
# Kraken's oldest pairs are named by their two asset ids (XXBTZUSD, XETHXXBT); later ones by
# their altname (SOLUSD, XBTUSDT, XDGUSD).
_OLD_ASSETS = {"XXBT", "XETH", "XLTC", "XXRP", "XXLM", "XXMR", "XETC", "XZEC"}
_OLD_QUOTES = _OLD_ASSETS | {"ZUSD", "ZEUR", "ZGBP", "ZJPY", "ZCAD", "ZAUD"}
_TAKER_FEES = [[0, 0.4], [10000, 0.35], [50000, 0.24], [100000, 0.22], [250000, 0.2],
               [500000, 0.18], [1000000, 0.16], [2500000, 0.14], [5000000, 0.12], [10000000, 0.1]]
_MAKER_FEES = [[0, 0.25], [10000, 0.2], [50000, 0.14], [100000, 0.12], [250000, 0.1],
               [500000, 0.08], [1000000, 0.06], [2500000, 0.04], [5000000, 0.02], [10000000, 0.0]]


class KrakenError(Exception):
    """An error Kraken reports in its envelope, with HTTP 200: {"error": [message], "result": {}}."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": [self.message], "result": {}}


def _invalid_arguments() -> KrakenError:
    return KrakenError("EGeneral:Invalid arguments")


def _unknown_pair() -> KrakenError:
    return KrakenError("EQuery:Unknown asset pair")


def _asset(code: str) -> tuple[str, str]:
    return _ASSETS.get(code, (code, code))


@dataclass(frozen=True)
class KrakenPair:
    """One market under Kraken's names: `key` names it in AssetPairs and OHLC results."""

    market: Market
    key: str  # "XXBTZUSD"
    altname: str  # "XBTUSD"
    wsname: str  # "XBT/USD"
    base_id: str  # "XXBT"
    quote_id: str  # "ZUSD"
    pair_decimals: int  # price decimals: the market's tick


def kraken_pair(market: Market) -> KrakenPair:
    base_id, base_alt = _asset(market.base)
    quote_id, quote_alt = _asset(market.quote)
    altname = base_alt + quote_alt
    key = base_id + quote_id if base_id in _OLD_ASSETS and quote_id in _OLD_QUOTES else altname
    decimals = max(0, round(-math.log10(market.tick_size)))
    return KrakenPair(market, key, altname, f"{base_alt}/{quote_alt}", base_id, quote_id, decimals)


def _decimal(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _pair_entry(pair: KrakenPair, trading: bool) -> dict:
    # Field names and order follow a real GET /0/public/AssetPairs entry.
    market = pair.market
    order_min = decimal_step(5.0 / usd_price(market.base))  # about 5 USD, as Kraken's minimums are
    return {
        "altname": pair.altname, "wsname": pair.wsname, "aclass_base": "currency", "base": pair.base_id,
        "aclass_quote": "currency", "quote": pair.quote_id, "lot": "unit", "cost_decimals": 5,
        "pair_decimals": pair.pair_decimals, "lot_decimals": 8, "lot_multiplier": 1,
        "leverage_buy": [], "leverage_sell": [], "fees": _TAKER_FEES, "fees_maker": _MAKER_FEES,
        "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40,
        "ordermin": _decimal(order_min), "costmin": "0.5", "tick_size": _decimal(market.tick_size),
        # A listed market that does not trade: orders can only be cancelled.
        "status": "online" if trading else "cancel_only",
    }


def asset_pairs(pairs: list[KrakenPair], halted=frozenset()) -> dict:
    """The `result` of GET /0/public/AssetPairs (ids in `halted` do not trade)."""
    return {p.key: _pair_entry(p, p.market.id not in halted) for p in pairs}


def assets(pairs: list[KrakenPair]) -> dict:
    """The `result` of GET /0/public/Assets: every asset of the listed pairs, in listing order."""
    result: dict[str, dict] = {}
    for pair in pairs:
        for code, asset_id in ((pair.market.base, pair.base_id), (pair.market.quote, pair.quote_id)):
            fiat = code in _FIAT
            result.setdefault(asset_id, {"aclass": "currency", "altname": _asset(code)[1],
                                         "decimals": 4 if fiat else 10, "display_decimals": 2 if fiat else 5,
                                         "status": "enabled"})
    return result


def server_time(now_ms: int) -> dict:
    """The `result` of GET /0/public/Time."""
    now = datetime.fromtimestamp(now_ms // 1000, UTC)
    return {"unixtime": now_ms // 1000, "rfc1123": now.strftime("%a, %e %b %y %H:%M:%S +0000")}


@dataclass(frozen=True)
class OhlcQuery:
    pair: KrakenPair
    interval: str  # the simulator's interval name ("1h")
    minutes: int
    since_s: int | None  # exclusive: bars opening after it


def _number(value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise _invalid_arguments() from None


def parse_ohlc_query(args: dict, pairs: dict[str, KrakenPair]) -> OhlcQuery:
    """Validate OHLC parameters as Kraken does: `pair` by key or altname, `interval` in minutes
    (default 1), `since` in seconds."""
    name = args.get("pair")
    if not name:
        raise _invalid_arguments()
    if name not in pairs:
        raise _unknown_pair()
    minutes = _number(args.get("interval") or "1")
    if minutes not in INTERVALS:
        raise _invalid_arguments()
    since = args.get("since")
    return OhlcQuery(pairs[name], INTERVALS[minutes], minutes, None if since in (None, "") else _number(since))


def select_ohlc_bars(path: PricePath, query: OhlcQuery, now_ms: int,
                     is_missing: Callable[[int], bool] | None = None) -> list[int]:
    """Bar indices OHLC serves, ascending: of the latest WINDOW bars up to the open one, those
    opening after `since`; the open bar is there whatever `since` says. Missing bars are left out."""
    interval = query.interval
    newest = timeframes.bar_index_at(interval, now_ms)
    if newest < path.first_index:
        return []  # not listed yet: no bar exists
    oldest = max(path.first_index, newest - WINDOW + 1)
    if query.since_s is not None:
        after = timeframes.bar_index_at(interval, query.since_s * 1000) + 1
        oldest = min(max(oldest, after), newest)
    bars = range(oldest, newest + 1)
    if is_missing is None:
        return list(bars)
    opens = timeframes.bar_open_ms(interval, list(bars)) if bars else []
    return [b for b, t in zip(bars, list(opens), strict=True) if not is_missing(int(t))]


def last_committed_s(query: OhlcQuery, now_ms: int) -> int:
    """OHLC's `last`: the open time (s) of the newest closed bar, the `since` that polls for what follows."""
    newest = timeframes.bar_index_at(query.interval, now_ms)
    return int(timeframes.bar_open_ms(query.interval, newest - 1)) // 1000


def ohlc_rows(candles: Candles, pair: KrakenPair) -> list[str]:
    """Each bar as the JSON text of a Kraken OHLC row: [time s, open, high, low, close, vwap,
    volume, count], prices with the pair's decimals, volume with 8."""
    market = pair.market
    bars = bar_columns(candles, market.tick_size, market.step_size, market.hourly_volume)
    price = f'"%.{pair.pair_decimals}f"'
    row = f"[%d,{price},{price},{price},{price},{price},\"%.8f\",%d]"
    vwap = np.round((bars["open"] + bars["high"] + bars["low"] + bars["close"]) / 4 / market.tick_size)
    vwap = (vwap * market.tick_size).tolist()
    columns = ((candles.open_ms // 1000).tolist(), bars["open"].tolist(), bars["high"].tolist(),
               bars["low"].tolist(), bars["close"].tolist(), vwap, bars["volume"].tolist(),
               bars["trades"].tolist())
    return [row % values for values in zip(*columns, strict=True)]
