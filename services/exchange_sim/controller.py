"""The simulator's state and its controls: markets, price paths, clock, faults, request log."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from . import timeframes
from .clock import SimClock, parse_time_ms
from .faults import FaultPlan
from .klines import bar_columns
from .listing import Listing
from .markets import DEFAULT_SYMBOLS, Market
from .prices import PricePath
from .shared import RequestLog

__all__ = ["DEFAULT_DIALECT", "DIALECTS", "DEFAULT_LISTED", "DEFAULT_NOW", "Simulator", "iso"]

DIALECTS = ("binance", "kraken")  # the public REST dialects it speaks, one per run (SIM_DIALECT)
DEFAULT_DIALECT = "binance"

DEFAULT_LISTED = "2022-01-01T00:00:00Z"  # no candle exists before this, as before a listing
DEFAULT_NOW = "2024-03-01T00:00:00Z"  # tests' frozen start; the CLI defaults to wall time
_RECENT = 1000  # request log entries kept for inspection


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


class Simulator:
    """Everything one run of the simulator knows; the HTTP app and tests share one instance.

    Tests drive it directly (`sim.advance(3600)`, `sim.set_faults([...])`,
    `sim.list_markets([...])`); other processes use the same controls over HTTP under /_sim/.
    What changes at runtime (clock, listing, fault rules and their counters, request log) is
    kept in shared memory, so server processes forked after the Simulator was made all see
    one state; market parameters and price paths are pure functions of the seed and symbol
    and are cached by each process for itself, so every dialect serves the same candles.
    """

    def __init__(self, seed: int = 0, symbols=DEFAULT_SYMBOLS, now=DEFAULT_NOW,
                 clock_rate: float = 0.0, faults: list[dict] | None = None,
                 listed=DEFAULT_LISTED, dialect: str = DEFAULT_DIALECT):
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
        self.dialect = dialect
        self.seed = int(seed)
        self.listing = Listing(symbols)
        self.listed_ms = parse_time_ms(listed)
        self.clock = SimClock(None if now is None else parse_time_ms(now), clock_rate)
        self.faults = FaultPlan(faults)
        self._paths: dict[tuple[str, str], PricePath] = {}
        self._lock = threading.Lock()
        self._log = RequestLog(_RECENT)

    # --- markets and prices -------------------------------------------------------
    @property
    def markets(self) -> dict[str, Market]:
        """The markets listed now, by Binance-style id ("BTCUSD")."""
        return self.listing.markets

    def market(self, symbol: str) -> Market:
        """By Binance id ("BTCUSD") or ccxt symbol ("BTC/USD")."""
        return self.markets[symbol.replace("/", "").upper()]

    def list_markets(self, symbols, active: bool = True) -> None:
        """List markets now (or halt them, active=False); a relisted market has the same candles."""
        self.listing.list(symbols, active)

    def delist_markets(self, symbols) -> None:
        """Remove markets now: from the market list and from every candle endpoint."""
        self.listing.delist(symbols)

    def price_path(self, symbol: str, interval: str) -> PricePath:
        market = self.market(symbol)
        with self._lock:
            key = (market.id, interval)
            if key not in self._paths:
                self._paths[key] = PricePath(self.seed, market, interval, self.listed_ms)
            return self._paths[key]

    def ohlcv(self, symbol: str, interval: str, since_ms: int, until_ms: int) -> list[list]:
        """[open ms, open, high, low, close, volume] of the bars opening in [since, until) and by
        now, as every dialect's body states them (parsed back from their decimals): what a
        client should have read, for tests to expect. Fault rules do not apply."""
        market, now = self.market(symbol), self.now_ms()
        path = self.price_path(market.id, interval)
        first = max(path.first_index, timeframes.first_bar_at_or_after(interval, since_ms))
        last = min(timeframes.bar_index_at(interval, until_ms - 1), timeframes.bar_index_at(interval, now))
        if last < first:
            return []
        candles = path.candles(first, last - first + 1, now)
        bars = bar_columns(candles, market.tick_size, market.step_size, market.hourly_volume)
        columns = [bars[name].tolist() for name in ("open", "high", "low", "close", "volume")]
        return [[ts, *(float(f"{value:.8f}") for value in values)]
                for ts, *values in zip(candles.open_ms.tolist(), *columns, strict=True)]

    # --- clock ----------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def set_now(self, when, rate: float | None = None) -> int:
        """Jump the clock to `when` (ms or ISO-8601); it may go backwards."""
        return self.clock.set(parse_time_ms(when), rate)

    def advance(self, seconds: float) -> int:
        return self.clock.advance(seconds)

    # --- faults ---------------------------------------------------------------------
    def set_faults(self, rules: list[dict]) -> None:
        self.faults.replace(rules)

    def add_faults(self, rules: list[dict]) -> None:
        self.faults.add(rules)

    def clear_faults(self) -> None:
        self.faults.clear()

    # --- request log ----------------------------------------------------------------
    def record_request(self, path: str, query: str) -> int:
        """Count and log a request; returns the number that record_status() takes."""
        return self._log.record(path, query, self.now_ms())

    def record_status(self, number: int, status: int) -> None:
        self._log.set_status(number, status)

    def request_counts(self) -> dict[str, int]:
        return self._log.counts()

    def recent_requests(self) -> list[dict]:
        return self._log.recent()

    def reset_requests(self) -> None:
        self._log.reset()

    def state(self) -> dict:
        now = self.now_ms()
        return {
            "dialect": self.dialect, "seed": self.seed,
            "symbols": [m.symbol for m in self.markets.values()],
            "markets": self.listing.describe(),
            "listed": iso(self.listed_ms), "now_ms": now, "now": iso(now),
            "clock_rate": self.clock.rate, "faults": self.faults.describe(),
            "requests": self.request_counts(),
        }
