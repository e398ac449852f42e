"""Deterministic price paths: one per (seed, market, interval), any bar computable on its own."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from . import rng, timeframes
from .markets import Market
from .rng import normals, stream_key, value_noise

__all__ = ["Candles", "PricePath"]

_YEAR_MS = 365 * 86_400_000
_HALF_LIFE_MS = 180 * 86_400_000  # log price reverts to the market's level with this half-life
_SUBSTEPS = 12  # intra-bar path points: what an open candle has "seen" so far
_FAST, _SLOW = (8.0, 0.30), (96.0, 0.35)  # volatility clustering: (period in bars, log-vol std)
_VOL_NOISE = (("vol-fast", _FAST), ("vol-slow", _SLOW))


@dataclass(frozen=True)
class Candles:
    """Columns of consecutive bars; prices are floats before tick rounding."""

    open_ms: np.ndarray
    close_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    taker_share: np.ndarray  # fraction of volume bought by takers


class PricePath:
    """Mean-reverting geometric random walk with volatility clustering for one market/interval.

    The log deviation from the market's price level follows an AR(1) (discrete OU) process.
    It is built in two levels so that any page costs O(page + block), not O(history):
    a coarse chain of block boundary states (cached, extended lazily, one scalar per block),
    and inside each block a Brownian bridge between the two boundary states whose
    increments come from counter-based draws indexed by bar number. Every number is
    therefore a pure function of (seed, symbol, interval, bar index).
    """

    def __init__(self, seed: int, market: Market, interval: str, listed_ms: int):
        self.market, self.interval = market, interval
        self.first_index = timeframes.first_bar_at_or_after(interval, listed_ms)
        bar_ms = timeframes.nominal_ms(interval)
        self._sigma = market.annual_vol * math.sqrt(bar_ms / _YEAR_MS)
        self._bar_hours = bar_ms / 3_600_000
        half_life_bars = _HALF_LIFE_MS / bar_ms
        # Blocks short against the half-life, so ignoring reversion inside a block is harmless.
        self._block = int(2 ** max(0, min(12, math.floor(math.log2(max(1.0, half_life_bars / 16))))))
        decay = math.log(2) / half_life_bars  # per bar: phi = exp(-decay)
        self._chain_a = math.exp(-decay * self._block)
        # Exact AR(1) variance over one block; expm1 avoids cancellation when decay is tiny.
        self._chain_sd = self._sigma * math.sqrt(
            math.expm1(-2 * decay * self._block) / math.expm1(-2 * decay))
        key = (seed, market.symbol, interval)
        self._keys = {name: stream_key(*key, name) for name in
                      ("returns", "vol-fast", "vol-slow", "chain", "intrabar", "volume", "taker")}
        self._chain = [0.0]  # state at each block boundary; the path starts at the level
        self._lock = threading.Lock()

    def _vol_mult(self, bars: np.ndarray) -> np.ndarray:
        return self._mult_from(bars, *(value_noise(self._keys[name], bars, period)
                                       for name, (period, _std) in _VOL_NOISE))

    @staticmethod
    def _mult_from(bars: np.ndarray, fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
        """The volatility multiplier of `bars` from their fast and slow value noise."""
        log_vol = _FAST[1] * fast + _SLOW[1] * slow
        # Subtracting the variance keeps E[mult**2] near 1, so sigma stays the mean volatility.
        return np.exp(log_vol - (_FAST[1] ** 2 + _SLOW[1] ** 2))

    def _chain_upto(self, block: int) -> None:
        """Extend the cached boundary states to block `block`."""
        with self._lock:
            have = len(self._chain)
            if block >= have:
                blocks = np.arange(have - 1, block, dtype=np.int64)
                shocks = normals(self._keys["chain"], blocks) * self._chain_sd
                if self._block <= 32:  # short blocks share the slow volatility regime
                    shocks *= self._vol_mult(blocks * self._block + self._block // 2)
                state = self._chain[-1]
                for shock in shocks.tolist():
                    state = self._chain_a * state + shock
                    self._chain.append(state)

    def _chain_between(self, b0: int, b1: int) -> np.ndarray:
        """Boundary states of blocks b0..b1 (the chain is extended up to b1 if need be)."""
        self._chain_upto(b1)
        # Only the slice becomes an array: 1s paths have tens of thousands of blocks.
        return np.asarray(self._chain[b0: b1 + 1])

    def _levels(self, n0: int, n1: int, bars: np.ndarray, mult: np.ndarray, returns: np.ndarray) -> np.ndarray:
        """Log deviation at bar boundaries n0..n1 (relative to the first listed bar), from the
        volatility multipliers and return draws of `bars`, every bar of the blocks they span."""
        size = self._block
        b0, b1 = n0 // size, n1 // size
        chain = self._chain_between(b0, b1 + 1)
        steps = self._sigma * mult * returns
        walk = np.zeros((b1 - b0 + 1, size + 1))
        np.cumsum(steps.reshape(-1, size), axis=1, out=walk[:, 1:])
        n = np.arange(n0, n1 + 1, dtype=np.int64)
        block, k = n // size - b0, n % size
        share = k / size
        drift = chain[block] + share * (chain[block + 1] - chain[block])
        return drift + walk[block, k] - share * walk[block, size]

    def candles(self, first: int, count: int, now_ms: int | None = None) -> Candles:
        """Bars first..first+count-1 (global bar indices, >= first_index); a bar containing
        now_ms is returned as the open candle seen at now_ms."""
        g = np.arange(first, first + count + 1, dtype=np.int64)
        opens = timeframes.bar_open_ms(self.interval, g)
        n = g[:-1] - self.first_index
        n0, n1 = int(n[0]), int(n[-1]) + 1
        size = self._block
        lowest, highest = n0 // size * size, (n1 // size + 1) * size - 1  # the bars of the blocks spanned
        bars = np.arange(lowest, highest + 1, dtype=np.int64)
        knots = [rng.knot_range(lowest, highest, period) for _name, (period, _std) in _VOL_NOISE]
        keys = self._keys
        # Every draw of the page in one pass (a small page is made of numpy's per-call cost).
        returns, fast, slow, shocks, noise, taker = rng.draw(
            [(keys["returns"], bars),
             *((keys[name], np.arange(k0, k1 + 1, dtype=np.int64)) for (name, _), (k0, k1) in zip(
                 _VOL_NOISE, knots, strict=True)),
             (keys["intrabar"], n[:, None] * _SUBSTEPS + np.arange(_SUBSTEPS)),
             (keys["volume"], n)],
            [(keys["taker"], n)])
        block_mult = self._mult_from(bars, *(
            rng.smooth_noise(table, k0, bars, period)
            for table, (k0, _k1), (_name, (period, _std)) in zip((fast, slow), knots, _VOL_NOISE, strict=True)))
        x = self._levels(n0, n1, bars, block_mult, returns)
        # The multiplier is a function of the bar alone, so the blocks' values are these bars' values.
        mult = block_mult[n0 - lowest: n1 - lowest]
        # Intra-bar path: a Brownian bridge from open to close on _SUBSTEPS points.
        j = np.arange(1, _SUBSTEPS + 1) / _SUBSTEPS
        walk = np.cumsum(shocks * (self._sigma * mult / math.sqrt(_SUBSTEPS))[:, None], axis=1)
        bridge = walk - j * walk[:, -1:]
        path = np.hstack([x[:-1, None], x[:-1, None] + j * (x[1:] - x[:-1])[:, None] + bridge])
        close, high, low = x[1:].copy(), path.max(axis=1), path.min(axis=1)
        volume = self.market.hourly_volume * self._bar_hours * mult**1.5 * np.exp(0.5 * noise - 0.125)
        if now_ms is not None and opens[-2] <= now_ms < opens[-1]:
            elapsed = (now_ms - opens[-2]) / (opens[-1] - opens[-2])
            close[-1], high[-1], low[-1] = _seen_so_far(path[-1], elapsed)
            volume[-1] *= elapsed
        level = self.market.price
        return Candles(
            open_ms=opens[:-1], close_ms=opens[1:] - 1,
            open=level * np.exp(x[:-1]), high=level * np.exp(high), low=level * np.exp(low),
            close=level * np.exp(close), volume=volume,
            taker_share=0.35 + 0.3 * taker,
        )


def _seen_so_far(path: np.ndarray, elapsed: float) -> tuple[float, float, float]:
    """(close, high, low) in log terms after `elapsed` (0..1) of one bar's intra-bar path."""
    position = elapsed * _SUBSTEPS
    k = min(int(position), _SUBSTEPS - 1)
    now = path[k] + (position - k) * (path[k + 1] - path[k])
    seen = path[: k + 1]
    return now, max(seen.max(), now), min(seen.min(), now)
