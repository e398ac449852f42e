"""Indicators from a stored recursion state: the state at the end of a history, carried over new bars.

The pure, frame-level half of the incremental update (services/indicators/state.py
holds the array math). Closed bars move a state forward; bars after the last
closed one (the open bar) get their values from the state without changing it,
so they are recomputed, from the same state, until they close.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping

import numpy as np
import pandas as pd

from services.indicators.block import INDICATOR_COLUMNS
from services.indicators.engine import compute_tail_batch_with_states, last_closed_position
from services.indicators.frames import PRICE_COLUMNS, check_index, indicator_frame
from services.indicators.params import IndicatorParams
from services.indicators.state import IndicatorState, advance, params_fingerprint

__all__ = ["advance_state", "advance_states", "build_state", "keys_with_unusable_prices"]

_KEY = "instrument_id"


def build_state(candles: pd.DataFrame, params: IndicatorParams = IndicatorParams()) -> IndicatorState | None:
    """The state at the last closed bar of a candle history; None if it has none, or too few bars."""
    last = last_closed_position(candles)
    if last < 0:
        return None
    return compute_tail_batch_with_states({0: candles}, params, {0: candles.index[last]})[0][1]


def advance_state(
    state: IndicatorState, candles: pd.DataFrame, params: IndicatorParams = IndicatorParams()
) -> tuple[pd.DataFrame, IndicatorState]:
    """(indicator frame of `candles`, the state after their last closed bar) for bars after state.last_ts."""
    frame, states = advance_states({0: state}, candles.assign(**{_KEY: 0}), params)
    return frame, states[0]


def advance_states(
    states: Mapping[Hashable, IndicatorState],
    candles: pd.DataFrame,
    params: IndicatorParams = IndicatorParams(),
    key: str = _KEY,
) -> tuple[pd.DataFrame, dict[Hashable, IndicatorState]]:
    """advance_state for many instruments at once: (one frame, {key: new state}).

    `candles` holds every instrument's bars after its state, one instrument after
    the other (column `key`), ascending in ts; `is_closed` marks closed bars
    (without it, all are). Row i of the frame is row i of `candles`. Instruments
    with the same numbers of closed and open bars are stacked, so each recurrence
    runs once for all of them. Keys of `states` without bars keep their state.
    """
    check_index(candles.index)
    keys = candles[key].to_numpy()
    starts, closed_counts, counts = _groups(keys, _closed_mask(candles))
    group_keys = keys[starts].tolist()
    _check_states(states, group_keys, candles, starts, params)
    unusable = keys_with_unusable_prices(candles, key)
    if unusable:
        raise ValueError(f"candles of {sorted(unusable, key=str)[:5]} have NaN or infinite prices")
    prices = [candles[column].to_numpy(dtype=np.float64) for column in PRICE_COLUMNS]
    values = np.empty((len(INDICATOR_COLUMNS), len(keys)))
    codes = np.empty(len(keys), np.int8)
    following = dict(states)
    by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
    for group, (closed, count) in enumerate(zip(closed_counts.tolist(), counts.tolist(), strict=True)):
        by_shape[(closed, count - closed)].append(group)
    for (closed, open_), groups in by_shape.items():
        vectors = np.stack([states[group_keys[group]].vector for group in groups])
        first = starts[groups]
        carried = _advance_rows(vectors, prices, first, closed, params, values, codes)
        _advance_rows(carried, prices, first + closed, open_, params, values, codes)
        if closed:
            stamps = candles.index[first + closed - 1]
            fingerprint = params_fingerprint(params)
            for group, stamp, vector in zip(groups, stamps, carried, strict=True):
                following[group_keys[group]] = IndicatorState(stamp, fingerprint, vector)
    return indicator_frame(values, codes, candles.index), following


def keys_with_unusable_prices(candles: pd.DataFrame, key: str = _KEY) -> set:
    """Keys with a NaN or infinite high, low or close: one would poison every average after it."""
    prices = candles[list(PRICE_COLUMNS)].to_numpy(dtype=np.float64)
    finite = np.isfinite(prices).all(axis=1)
    return set() if finite.all() else set(candles[key].to_numpy()[~finite].tolist())


def _closed_mask(candles: pd.DataFrame) -> np.ndarray:
    if "is_closed" not in candles.columns:
        return np.ones(len(candles), dtype=bool)
    return candles["is_closed"].to_numpy(dtype=bool)


def _groups(keys: np.ndarray, closed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first row, bars up to and including the last closed one, bars) of each key's run of rows."""
    if len(keys) == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, empty
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    if len(np.unique(keys[starts])) != len(starts):
        raise ValueError(f"candles must hold each {_KEY} in one run of rows")
    counts = np.diff(np.r_[starts, len(keys)])
    last_closed = np.maximum.reduceat(np.where(closed, np.arange(len(keys)), -1), starts)
    return starts, np.where(last_closed >= starts, last_closed - starts + 1, 0), counts


def _check_states(
    states: Mapping[Hashable, IndicatorState],
    group_keys: list,
    candles: pd.DataFrame,
    starts: np.ndarray,
    params: IndicatorParams,
) -> None:
    """Refuse bars without a state, a state of other params, and bars that do not follow their state."""
    missing = [key for key in group_keys if key not in states]
    if missing:
        raise ValueError(f"no state for {missing[:5]}")
    fingerprint = params_fingerprint(params)
    foreign = [key for key in group_keys if states[key].fingerprint != fingerprint]
    if foreign:
        raise ValueError(f"the states of {foreign[:5]} were computed with other params")
    steps = np.diff(candles.index.asi8)
    within = np.ones(len(steps), dtype=bool)
    within[starts[1:] - 1] = False  # from one instrument's last bar to the next one's first
    if not (steps[within] > 0).all():
        raise ValueError("candles must be strictly ascending in ts within each instrument")
    first = candles.index[starts]
    behind = [key for key, stamp in zip(group_keys, first, strict=True) if stamp <= states[key].last_ts]
    if behind:
        raise ValueError(f"bars of {behind[:5]} do not follow their state's last bar")


def _advance_rows(
    vectors: np.ndarray,
    prices: list[np.ndarray],
    first: np.ndarray,
    bars: int,
    params: IndicatorParams,
    values: np.ndarray,
    codes: np.ndarray,
) -> np.ndarray:
    """Advance stacked states over `bars` bars from rows `first`, writing their values; the new states."""
    if bars == 0:
        return vectors
    rows = first[:, None] + np.arange(bars)
    high, low, close = (column[rows] for column in prices)
    block, block_codes, carried = advance(vectors, high, low, close, params)
    values[:, rows] = block
    codes[rows] = block_codes
    return carried
