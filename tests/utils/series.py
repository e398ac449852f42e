"""Candle series for tests and benchmarks: a seeded random walk with volatility clustering."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["candles_from_closes", "realistic_candles"]

# Log-volatility is an AR(1) with this persistence: calm and stormy stretches last
# ~50 bars, like real markets (and unlike i.i.d. noise, which is too kind to
# recursive averages).
VOLATILITY_PERSISTENCE = 0.98
LOG_VOLATILITY_SPREAD = 0.5


def realistic_candles(
    bars: int = 20_000,
    seed: int = 7,
    price: float = 100.0,
    volatility: float = 0.01,
    drift: float = 0.0,
    start: str = "2020-01-01",
    freq: str = "1h",
) -> pd.DataFrame:
    """OHLCV candles from a geometric random walk whose volatility clusters.

    `volatility` is the typical per-bar log-return deviation, `drift` the mean
    log-return per bar. Fat-tailed (Student t, 4 dof) returns, open at the previous
    close, wicks beyond the body, volume that rises with volatility. Deterministic
    for a given seed. Index: UTC DatetimeIndex named `ts`.
    """
    rng = np.random.default_rng(seed)
    persistence = VOLATILITY_PERSISTENCE
    # An EWM with alpha = 1 - persistence is an AR(1) scaled by (1 - persistence).
    innovation = LOG_VOLATILITY_SPREAD * np.sqrt(1.0 - persistence**2) / (1.0 - persistence)
    noise = rng.standard_normal(bars)
    # The EWM starts at its first input: scale it to the stationary spread so the
    # first bars are not a volatility explosion.
    noise[0] *= np.sqrt((1.0 - persistence) / (1.0 + persistence))
    log_volatility = pd.Series(noise).ewm(alpha=1.0 - persistence, adjust=False).mean()
    bar_volatility = volatility * np.exp(innovation * log_volatility.to_numpy())
    shocks = rng.standard_t(df=4, size=bars) / np.sqrt(2.0)  # unit variance
    close = price * np.exp(np.cumsum(drift + bar_volatility * shocks))
    open_ = np.concatenate(([price], close[:-1]))
    wick = bar_volatility / 2.0
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, wick)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, wick)))
    volume = 1_000.0 * (bar_volatility / volatility) * rng.lognormal(0.0, 0.5, bars)
    index = pd.date_range(start, periods=bars, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)


def candles_from_closes(
    closes: Sequence[float] | np.ndarray,
    wick: float = 0.001,
    start: str = "2020-01-01",
    freq: str = "1h",
) -> pd.DataFrame:
    """Hand-made candles around given closes: open at the previous close, wicks of `wick` (relative)."""
    close = np.asarray(closes, dtype=np.float64)
    open_ = np.concatenate((close[:1], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    index = pd.date_range(start, periods=len(close), freq=freq, tz="UTC", name="ts")
    volume = np.full(len(close), 1_000.0)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)
