"""GET /api/v3/klines semantics: parameter checks, page selection, Binance's 12-field rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import timeframes
from .prices import Candles, PricePath

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "BinanceError", "KlinesQuery", "parse_query",
           "select_bars", "bar_columns", "kline_rows"]

DEFAULT_LIMIT, MAX_LIMIT = 500, 1000
_TRADES_PER_HOURLY_VOLUME = 2500  # trade count of a bar with the market's typical hourly volume


class BinanceError(Exception):
    """An error Binance answers with HTTP `status` and body {"code": code, "msg": msg}."""

    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _integer(args: dict, name: str) -> int | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; "
                                  "legal range is '^[0-9]{1,20}$'.")
    return int(value)


@dataclass(frozen=True)
class KlinesQuery:
    symbol: str  # Binance id
    interval: str
    start_ms: int | None
    end_ms: int | None
    limit: int


def parse_query(args: dict, known_ids: set[str]) -> KlinesQuery:
    """Validate klines query parameters in the order Binance reports problems."""
    symbol = args.get("symbol")
    if not symbol:
        raise _mandatory("symbol")
    if symbol not in known_ids:
        raise BinanceError(-1121, "Invalid symbol.")
    interval = args.get("interval")
    if not interval:
        raise _mandatory("interval")
    if not timeframes.is_interval(interval):
        raise BinanceError(-1120, "Invalid interval.")
    start, end, limit = (_integer(args, n) for n in ("startTime", "endTime", "limit"))
    if start is not None and end is not None and start > end:
        raise BinanceError(-1023, "Start time is greater than end time.")
    if limit == 0:
        raise BinanceError(-1130, "Invalid data sent for a parameter.")
    # Binance spot clamps an oversized limit to 1000 instead of rejecting it.
    return KlinesQuery(symbol, interval, start, end, min(limit or DEFAULT_LIMIT, MAX_LIMIT))


def select_bars(path: PricePath, query: KlinesQuery, now_ms: int,
                is_missing: Callable[[int], bool] | None = None) -> list[int]:
    """Global bar indices to serve, ascending: open time >= startTime and <= endTime, never
    after now, at most `limit` of them; without startTime the latest ones. Missing bars are
    skipped and the page filled up past them, as Binance does around real outages."""
    interval = query.interval
    lowest = path.first_index
    highest = timeframes.bar_index_at(interval, now_ms)
    if query.end_ms is not None:
        highest = min(highest, timeframes.bar_index_at(interval, query.end_ms))
    forward = query.start_ms is not None
    if forward:
        lowest = max(lowest, timeframes.first_bar_at_or_after(interval, query.start_ms))
    chosen: list[int] = []
    cursor = lowest if forward else highest
    step = 1 if forward else -1
    while len(chosen) < query.limit and lowest <= cursor <= highest:
        # Look at a batch at a time so long gaps cost one vectorized call, not one per bar.
        batch = np.arange(cursor, cursor + step * (query.limit - len(chosen)), step)
        batch = batch[(batch >= lowest) & (batch <= highest)]
        if is_missing is None:
            chosen.extend(batch.tolist())
        else:
            opens = timeframes.bar_open_ms(interval, batch).tolist()
            chosen.extend(g for g, t in zip(batch.tolist(), opens, strict=True) if not is_missing(t))
        cursor = int(batch[-1]) + step
    return sorted(chosen)


def _on_grid(values: np.ndarray, unit: float) -> np.ndarray:
    # Rounding is monotonic, so low <= open, close <= high survives it; never below one unit.
    return np.maximum(np.round(values / unit) * unit, unit)


# One Binance kline: [open time, o, h, l, c, volume, close time, quote volume, trades,
# taker buy base volume, taker buy quote volume, ignore]; decimals travel as strings.
_ROW = '[%d,"%.8f","%.8f","%.8f","%.8f","%.8f",%d,"%.8f",%d,"%.8f","%.8f","0"]'


def bar_columns(candles: Candles, tick: float, step: float, hourly_volume: float) -> dict[str, np.ndarray]:
    """The bars as an exchange reports them, on the market's tick and lot grids: open, high, low,
    close, volume, quote volume, trades, taker-bought base and quote volume. Every dialect
    formats these same numbers, so the same seed gives the same candles in each."""
    o, h, l, c = (_on_grid(a, tick) for a in (candles.open, candles.high, candles.low, candles.close))
    volume = _on_grid(candles.volume, step)
    quote = volume * (o + h + l + c) / 4
    trades = np.maximum(1, volume / hourly_volume * _TRADES_PER_HOURLY_VOLUME).astype(np.int64)
    taker = np.round(volume * candles.taker_share / step) * step
    return {"open": o, "high": h, "low": l, "close": c, "volume": volume, "quote": quote,
            "trades": trades, "taker": taker, "taker_quote": quote * candles.taker_share}


def kline_rows(candles: Candles, tick: float, step: float, hourly_volume: float) -> list[str]:
    """Each bar as the JSON text of a Binance kline row (formatting whole rows at once is
    what keeps a 1000-bar page at a few milliseconds)."""
    bars = bar_columns(candles, tick, step, hourly_volume)
    columns = (candles.open_ms, bars["open"], bars["high"], bars["low"], bars["close"], bars["volume"],
               candles.close_ms, bars["quote"], bars["trades"], bars["taker"], bars["taker_quote"])
    return [_ROW % row for row in zip(*(col.tolist() for col in columns), strict=True)]
