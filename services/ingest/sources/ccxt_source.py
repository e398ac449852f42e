"""Candles from any ccxt exchange, with ccxt's error classes mapped to retry or not."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import ccxt

from services.core.exceptions import PermanentSourceError, RetryableSourceError
from services.ingest.sources.base import CandleSource
from services.ingest.sources.capabilities import capabilities_for
from services.ingest.sources.ccxt_markets import drop_market_payloads, market_record
from services.ingest.sources.ccxt_urls import point_ccxt_at, reject_non_json_bodies

__all__ = ["CcxtSource", "classify_ccxt_error"]

log = logging.getLogger(__name__)


def classify_ccxt_error(exc: Exception, describe: str) -> Exception:
    """ccxt's own taxonomy decides: OperationFailed (network, timeout, rate limit, DDoS
    protection, unreadable response) is transient; ExchangeError (bad symbol, bad request,
    authentication, not supported) means the request itself is wrong."""
    kind = type(exc).__name__
    if isinstance(exc, ccxt.OperationFailed):
        return RetryableSourceError(f"{describe}: {kind}: {exc}"[:500])
    if isinstance(exc, ccxt.BaseError):
        return PermanentSourceError(f"{describe}: {kind}: {exc}"[:500])
    return exc


class CcxtSource(CandleSource):
    """One ccxt exchange client; every request first takes a slot from the shared limiter."""

    def __init__(self, exchange_id: str, api_url: str | None = None, timeout_ms: int = 10_000,
                 throttle: Callable[[], object] | None = None, clock_recheck_s: float = 60.0,
                 reserve: Callable[[int], AbstractContextManager] | None = None) -> None:
        if exchange_id not in ccxt.exchanges:
            raise PermanentSourceError(f"unknown ccxt exchange id {exchange_id!r}")
        klass = getattr(ccxt, exchange_id)
        self.name = exchange_id
        self.capabilities = capabilities_for(exchange_id, getattr(klass, "features", None) or klass().features)
        # ccxt's own limiter is per instance; the shared Redis limiter replaces it.
        # ccxt would also keep the last response's body and headers until the next request: after
        # load_markets that is the whole market list as text (15 MB at 10,000 markets).
        self._client = klass({"enableRateLimit": False, "timeout": timeout_ms,
                              "enableLastHttpResponse": False, "enableLastResponseHeaders": False,
                              "options": dict(self.capabilities.options)})
        if not self.capabilities.reads_market_info:
            drop_market_payloads(self._client)
        # For a 200 that is not JSON ccxt returns [] or rows made of the body's characters.
        reject_non_json_bodies(self._client)
        if api_url:
            point_ccxt_at(self._client, api_url)
        self._throttle = throttle or (lambda: None)
        self._reserve = reserve or (lambda requests: nullcontext())
        self._markets_loaded = False
        self._markets_lock = threading.Lock()
        self._clock_offset_ms: int | None = None
        self._clock_checked = 0.0
        self._clock_recheck_s = clock_recheck_s

    def _call(self, describe: str, request: Callable[[], object]) -> object:
        self._throttle()
        try:
            return request()
        except ccxt.BaseError as exc:
            raise classify_ccxt_error(exc, describe) from exc

    def _ensure_markets(self, reload: bool = False) -> None:
        # A batch fetches from several threads; the market list is loaded by one of them.
        with self._markets_lock:
            if reload or not self._markets_loaded:
                self._call(f"{self.name} load_markets", lambda: self._client.load_markets(reload=reload))
                self._markets_loaded = True

    def ahead(self, requests: int) -> AbstractContextManager:
        """The throttle's scope for `requests` coming requests (e.g. SharedRateLimiter.ahead)."""
        return self._reserve(requests)

    def now_ms(self) -> int:
        """The exchange's clock where it has one, else ours.

        The offset to our clock is asked for every `clock_recheck_s`, not per sync: every
        request counts against the exchange's rate limit, and a real clock does not drift
        in a minute. (A simulator whose clock jumps needs 0: ask every time.)
        """
        if not self._client.has.get("fetchTime"):
            return int(time.time() * 1000)
        if self._clock_offset_ms is None or time.monotonic() - self._clock_checked >= self._clock_recheck_s:
            exchange_ms = int(self._call(f"{self.name} fetch_time", self._client.fetch_time))
            self._clock_offset_ms = exchange_ms - int(time.time() * 1000)
            self._clock_checked = time.monotonic()
        return int(time.time() * 1000) + self._clock_offset_ms

    def check_instrument(self, symbol: str, timeframe: str) -> None:
        self._ensure_markets()
        if symbol not in self._client.markets:
            # Markets are cached per process; a symbol listed since then needs one fresh look.
            self._ensure_markets(reload=True)
        if symbol not in self._client.markets:
            raise PermanentSourceError(f"{self.name} does not list symbol {symbol!r}")
        if timeframe not in (self._client.timeframes or {}):
            raise PermanentSourceError(f"{self.name} does not support timeframe {timeframe!r}")

    def list_markets(self) -> list[dict]:
        """The exchange's markets, loaded afresh (the process's cached list is replaced too)."""
        self._ensure_markets(reload=True)
        return [market_record(market) for market in self._client.markets.values()]

    def fetch_candles(self, symbol: str, timeframe: str, since_ms: int, limit: int) -> list[list]:
        self.check_instrument(symbol, timeframe)
        describe = f"{self.name} fetch_ohlcv {symbol} {timeframe} since {since_ms}"
        return self._call(describe, lambda: self._client.fetch_ohlcv(symbol, timeframe, since_ms, limit))
