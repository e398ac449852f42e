"""The interface every candle source implements, and its capabilities as data."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from services.core.exceptions import PermanentSourceError

__all__ = ["SourceCapabilities", "CandleSource"]


@dataclass(frozen=True)
class SourceCapabilities:
    """What a source can do, so callers plan requests without branching on its name."""

    max_candles: int = 500          # bars per request the source will return at most
    full_history: bool = True       # False: only the latest `max_candles` bars are served
    since_inclusive: bool = True    # whether a bar opening exactly at `since` is returned
    options: dict = field(default_factory=dict)  # client options the source needs
    reads_market_info: bool = False  # candle requests read each market's raw payload: keep it loaded


class CandleSource(ABC):
    """A place candles come from: an exchange through ccxt, a file, a simulator."""

    name: str
    capabilities: SourceCapabilities

    @abstractmethod
    def now_ms(self) -> int:
        """The source's clock in ms since the epoch (decides which bar is still open)."""

    @abstractmethod
    def check_instrument(self, symbol: str, timeframe: str) -> None:
        """Raise PermanentSourceError naming what is wrong unless the source serves `symbol` in `timeframe`.

        Called before an instrument is registered, so an unknown symbol never becomes one.
        """

    @abstractmethod
    def fetch_candles(self, symbol: str, timeframe: str, since_ms: int, limit: int) -> list[list]:
        """Raw [ts_ms, open, high, low, close, volume] rows opening at or after `since_ms`.

        Raises RetryableSourceError for transient failures and PermanentSourceError
        for failures retrying cannot fix.
        """

    def list_markets(self) -> list[dict]:
        """Every market the source lists now, each with MARKET_FIELDS (core.store.markets): what a market sync records.

        A source without a market list (a file) refuses with PermanentSourceError.
        """
        raise PermanentSourceError(f"{self.name} has no market list to sync")

    def ahead(self, requests: int) -> AbstractContextManager:
        """A scope in which about `requests` requests follow (a batch's concurrent fetches).

        A source behind a shared rate limit reserves their slots together; by default nothing changes.
        """
        return nullcontext()
