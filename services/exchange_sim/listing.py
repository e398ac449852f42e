"""The exchange's listing: which markets exist and which of them trade, changeable while the server runs."""

from __future__ import annotations

import struct

from .markets import Market, make_market
from .shared import SharedMemory

__all__ = ["Listing"]

_HEADER = struct.Struct("q")  # generation, bumped on every change
_AT, _CAPACITY = 64, 8 << 20  # the listing as JSON; 10,000 markets take about 250 KB


class Listing:
    """Listed markets by ccxt symbol, each trading (True) or halted (False), in listing order.

    Kept in shared memory like the clock and the fault rules, so a market listed or delisted
    through one server process is listed or gone for all of them. Each process re-reads the
    list only after a change (the generation number) and builds a Market once per symbol:
    its parameters are a pure function of the symbol.
    """

    def __init__(self, symbols):
        self._memory = SharedMemory(_AT + _CAPACITY)
        self._generation = -1
        self._markets: dict[str, Market] = {}  # Binance-style id -> Market, as listed
        self._halted: frozenset[str] = frozenset()
        self._made: dict[str, Market] = {}
        markets = [make_market(s) for s in symbols]
        if len({m.id for m in markets}) != len(markets):
            raise ValueError(f"duplicate symbols in {list(symbols)}")
        with self._memory.lock:
            self._store({m.symbol: True for m in markets})

    def _store(self, listing: dict[str, bool]) -> None:
        """Make `listing` the one every process sees; call with the lock held."""
        self._memory.write_json(_AT, _CAPACITY, listing)
        (generation,) = _HEADER.unpack_from(self._memory.buffer, 0)
        _HEADER.pack_into(self._memory.buffer, 0, generation + 1)

    def _read(self) -> dict[str, bool]:
        return self._memory.read_json(_AT) or {}

    def _refresh(self) -> None:
        (generation,) = _HEADER.unpack_from(self._memory.buffer, 0)
        if generation == self._generation:
            return  # unchanged, the usual case: no lock, no parsing
        with self._memory.lock:
            (generation,) = _HEADER.unpack_from(self._memory.buffer, 0)
            listing = self._read()
        markets = {}
        for symbol in listing:
            if symbol not in self._made:
                self._made[symbol] = make_market(symbol)
            markets[self._made[symbol].id] = self._made[symbol]
        self._markets = markets
        self._halted = frozenset(self._made[s].id for s, trading in listing.items() if not trading)
        self._generation = generation

    @property
    def markets(self) -> dict[str, Market]:
        """Listed markets by Binance-style id ("BTCUSD"), halted ones included."""
        self._refresh()
        return self._markets

    @property
    def halted(self) -> frozenset[str]:
        """Ids of listed markets that do not trade (Binance status BREAK, Kraken cancel_only)."""
        self._refresh()
        return self._halted

    def describe(self) -> list[dict]:
        self._refresh()
        return [{"symbol": m.symbol, "active": m.id not in self._halted} for m in self._markets.values()]

    def list(self, symbols, active: bool = True) -> None:
        """List `symbols` (or change whether they trade); a symbol already listed keeps its place."""
        if isinstance(symbols, str) or not symbols:
            raise ValueError("symbols must be a non-empty list of BASE/QUOTE symbols")
        if not isinstance(active, bool):
            raise ValueError(f"active must be true or false, got {active!r}")
        canonical = [make_market(s).symbol for s in symbols]  # refuses malformed ones before any change
        with self._memory.lock:
            listing = self._read()
            for symbol in canonical:
                listing[symbol] = active
            self._store(listing)

    def delist(self, symbols) -> None:
        """Remove `symbols`: the exchange then answers for them as for a symbol it never had."""
        if isinstance(symbols, str) or not symbols:
            raise ValueError("symbols must be a non-empty list of BASE/QUOTE symbols")
        canonical = [make_market(s).symbol for s in symbols]
        with self._memory.lock:
            listing = self._read()
            unknown = [s for s in canonical if s not in listing]
            if unknown:
                raise ValueError(f"not listed: {unknown}")
            for symbol in canonical:
                del listing[symbol]
            self._store(listing)
