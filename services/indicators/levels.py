"""Support and resistance levels: clustered swing highs and lows of an OHLCV frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["LEVEL_COLUMNS", "LevelParams", "find_levels", "swing_highs", "swing_lows"]

LEVEL_COLUMNS = ["kind", "price", "touches", "strength", "first_ts", "last_ts"]


@dataclass(frozen=True)
class LevelParams:
    """How swings are found, clustered into levels and scored."""

    swing: int = 3  # bars each side a swing high (low) must top (undercut)
    tolerance: float = 0.005  # swings within this fraction of the cluster's lowest price share a level
    min_touches: int = 1  # levels with fewer swings are dropped
    recency_weight: float = 0.3  # share of strength from how recent the last touch is (rest: touches)


def _swings(values: pd.Series, swing: int) -> pd.Series:
    """True where a value tops the `swing` values before it and is not topped by the `swing` after it.

    Strict on the left, inclusive on the right, so a flat top of equal bars counts once (its first
    bar). The last `swing` bars are never swings: their right side has not happened yet.
    """
    before = values.shift(1).rolling(swing).max()
    after = values.shift(-swing).rolling(swing).max()
    return (values > before) & (values >= after)


def swing_highs(candles: pd.DataFrame, swing: int = LevelParams.swing) -> pd.Series:
    """Boolean mask of bars whose high is the highest of `swing` bars each side."""
    return _swings(candles["high"].astype("float64"), swing)


def swing_lows(candles: pd.DataFrame, swing: int = LevelParams.swing) -> pd.Series:
    """Boolean mask of bars whose low is the lowest of `swing` bars each side."""
    # Negating turns the lowest low into the highest value, so one rule finds both.
    return _swings(-candles["low"].astype("float64"), swing)


def _cluster_ids(sorted_prices: np.ndarray, tolerance: float) -> np.ndarray:
    """Cluster id per ascending price; a cluster spans at most `tolerance` of its lowest price.

    Anchoring at the lowest member (instead of chaining neighbour gaps) stops a slow staircase of
    swings from merging into one wide level. The loop runs over swings, which are few, not bars.
    """
    ids = np.empty(len(sorted_prices), dtype=np.int64)
    cluster, anchor = -1, -np.inf
    for i, price in enumerate(sorted_prices):
        if price > anchor * (1.0 + tolerance):
            cluster, anchor = cluster + 1, price
        ids[i] = cluster
    return ids


def _empty(index: pd.Index) -> pd.DataFrame:
    ts_dtype = index.dtype if isinstance(index, pd.DatetimeIndex) else "datetime64[us, UTC]"
    return pd.DataFrame(
        {
            "kind": pd.Series(dtype="str"),
            "price": pd.Series(dtype="float64"),
            "touches": pd.Series(dtype="int64"),
            "strength": pd.Series(dtype="float64"),
            "first_ts": pd.Series(dtype=ts_dtype),
            "last_ts": pd.Series(dtype=ts_dtype),
        }
    )


def _swing_points(candles: pd.DataFrame, swing: int) -> pd.DataFrame:
    """One row per swing: its price and bar position, ascending by price then position."""
    positions = np.arange(len(candles))
    highs, lows = swing_highs(candles, swing).to_numpy(), swing_lows(candles, swing).to_numpy()
    points = pd.DataFrame(
        {
            "price": np.concatenate([candles["high"].to_numpy()[highs], candles["low"].to_numpy()[lows]]),
            "pos": np.concatenate([positions[highs], positions[lows]]),
        }
    )
    return points.sort_values(["price", "pos"], kind="stable", ignore_index=True)


def find_levels(candles: pd.DataFrame, params: LevelParams = LevelParams()) -> pd.DataFrame:
    """Levels as rows `kind, price, touches, strength, first_ts, last_ts`, ordered by kind then price.

    Swing highs and lows are clustered together (a broken resistance becomes support); a level is
    support when at or below the last close, resistance when above it.
    """
    if params.swing < 1 or len(candles) < 2 * params.swing + 1:
        return _empty(candles.index)
    points = _swing_points(candles, params.swing)
    if points.empty:
        return _empty(candles.index)
    points["cluster"] = _cluster_ids(points["price"].to_numpy(), params.tolerance)
    levels = points.groupby("cluster").agg(
        price=("price", "mean"), touches=("pos", "size"), first_pos=("pos", "min"), last_pos=("pos", "max")
    )
    levels = levels[levels["touches"] >= params.min_touches]
    if levels.empty:
        return _empty(candles.index)
    touch_score = levels["touches"] / levels["touches"].max()
    recency = levels["last_pos"] / (len(candles) - 1)
    last_close = float(candles["close"].iloc[-1])
    index = candles.index
    result = pd.DataFrame(
        {
            "kind": np.where(levels["price"] <= last_close, "support", "resistance"),
            "price": levels["price"].to_numpy(dtype="float64"),
            "touches": levels["touches"].to_numpy(dtype="int64"),
            "strength": ((1.0 - params.recency_weight) * touch_score + params.recency_weight * recency).to_numpy(),
            "first_ts": index[levels["first_pos"].to_numpy()],
            "last_ts": index[levels["last_pos"].to_numpy()],
        }
    )
    return result.sort_values(["kind", "price"], kind="stable", ignore_index=True)[LEVEL_COLUMNS]
