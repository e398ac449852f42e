"""The one series a per-series read names: exchange and timeframe defaults, and a 404 naming an unknown symbol."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from services.api.errors import ApiError
from services.api.routes.deps import deps
from services.api.routes.params import SeriesQuery
from services.core.store.instruments import find_instrument

__all__ = ["Series", "find_series"]


@dataclass(frozen=True)
class Series:
    """An instrument and one of its timeframes, as a read resolved them."""

    exchange: str
    symbol: str
    timeframe: str
    instrument_id: int

    def head(self) -> dict:
        """What every per-series body opens with."""
        return {"exchange": self.exchange, "symbol": self.symbol, "timeframe": self.timeframe}


def find_series(conn: Connection, query: SeriesQuery) -> Series:
    """The series `query` names, defaults filled from the settings; a 404 naming `symbol` if never ingested."""
    settings = deps().settings
    exchange = query.exchange or settings.exchange
    instrument_id = find_instrument(conn, exchange, query.symbol)
    if instrument_id is None:
        raise ApiError(404, f"no instrument {query.symbol} on {exchange}; see GET /api/instruments", "symbol")
    return Series(exchange, query.symbol, query.timeframe or settings.timeframes[0], instrument_id)
