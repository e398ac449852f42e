"""The indicator engine: candles in, one wide indicator frame out; full history or just the tail."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from services.indicators.block import INDICATOR_COLUMNS, first_regime_bar, indicator_block
from services.indicators.frames import check_index, checked_prices, indicator_frame, price_rows
from services.indicators.params import IndicatorParams
from services.indicators.regime import REGIMES, classify_regime
from services.indicators.state import IndicatorState, first_state_bar, params_fingerprint, snapshot

__all__ = [
    "INDICATOR_COLUMNS",
    "REGIMES",
    "TAIL_TOLERANCE",
    "IndicatorParams",
    "classify_regime",
    "compute_indicators",
    "compute_tail",
    "compute_tail_batch",
    "compute_tail_batch_with_states",
    "first_regime_bar",
    "last_closed_position",
    "warmup_bars",
]

# What a tail window's seeds may still contribute, as a fraction of the price scale,
# once the window is warmup_bars long. It sits 1000x below the promised 1e-9 to
# absorb what the pure decay bound leaves out: RSI and DI are ratios of smoothed
# values (their relative error is what matters, and a seed taken in a volatile
# stretch can be many times the settled average), and chained smoothings add a
# factor (1 + alpha * n) to the geometric decay.
TAIL_TOLERANCE = 1e-12


@lru_cache(maxsize=64)
def warmup_bars(params: IndicatorParams = IndicatorParams()) -> int:
    """Bars of history before the first bar to recompute for a tail to equal full history.

    A seeded exponential smoothing forgets its seed as (1 - alpha)**n, so it needs
    its seed window plus n = log(TAIL_TOLERANCE) / log(1 - alpha) bars. Chained
    smoothings add up: the MACD signal smooths a line that must first settle, the
    ADX smooths DX built from Wilder-smoothed DI. Rolling windows (SMA, Bollinger)
    are exact once they are full. The answer is the slowest of all of them (for the
    defaults, EMA(200): about 2,960 bars).
    """
    return max(
        _ema_bars(params.ema_fast),
        _ema_bars(params.ema_slow),
        _ema_bars(params.ema_trend),
        _ema_bars(params.channel),
        _ema_bars(params.macd_slow) + _ema_bars(params.macd_signal),
        _wilder_bars(params.rsi),
        _wilder_bars(params.atr),
        2 * _wilder_bars(params.adx),
        params.sma_fast,
        params.sma_slow,
        params.bb_period,
    )


def _decay_bars(alpha: float) -> int:
    """Bars after which a smoothing with this alpha keeps < TAIL_TOLERANCE of its seed."""
    return math.ceil(math.log(TAIL_TOLERANCE) / math.log1p(-alpha))


def _ema_bars(period: int) -> int:
    """Seed window plus decay of a TA-Lib EMA (alpha = 2 / (period + 1))."""
    return period + _decay_bars(2.0 / (period + 1))


def _wilder_bars(period: int) -> int:
    """Seed window (with the skipped first bar) plus decay of Wilder smoothing (alpha = 1/period)."""
    return period + 1 + _decay_bars(1.0 / period)


def compute_indicators(candles: pd.DataFrame, params: IndicatorParams = IndicatorParams()) -> pd.DataFrame:
    """Every indicator for every bar of `candles`, equal to TA-Lib after its warm-up.

    `candles`: UTC DatetimeIndex `ts`, strictly ascending, float columns
    open/high/low/close/volume without gaps in high/low/close. Returns a frame on
    the same index with INDICATOR_COLUMNS (float64, NaN during each warm-up) and
    `regime` (object: a name from REGIMES, None during the warm-up).
    """
    return _compute_windows([candles], [0], params)[0][0]


def compute_tail(candles: pd.DataFrame, params: IndicatorParams, since_ts: Any) -> pd.DataFrame:
    """Indicators for the bars at or after `since_ts`, from only the history they need.

    Uses the last warmup_bars(params) bars before `since_ts` plus every bar from it,
    so an hourly update costs O(new bars) and still equals compute_indicators on
    the full history to within 1e-9 of the price scale.
    """
    window, first_new = _tail_window(candles, params, since_ts)
    return _compute_windows([window], [first_new], params)[0][0]


def compute_tail_batch(
    frames: Mapping[Hashable, pd.DataFrame],
    params: IndicatorParams,
    since: Mapping[Hashable, Any],
) -> dict[Hashable, pd.DataFrame]:
    """compute_tail for many instruments at once: {key: tail frame} for `frames` and `since`.

    Windows of equal length (the usual case: warm-up plus one new bar) are stacked
    as rows, so each recurrence runs once, vectorised over instruments, instead of
    once per instrument.
    """
    return {key: frame for key, (frame, _) in _tail_batch(frames, params, since, with_states=False).items()}


def compute_tail_batch_with_states(
    frames: Mapping[Hashable, pd.DataFrame],
    params: IndicatorParams,
    since: Mapping[Hashable, Any],
) -> dict[Hashable, tuple[pd.DataFrame, IndicatorState | None]]:
    """compute_tail_batch, plus each instrument's recursion state at its last closed bar.

    The state is None when the window has no closed bar, or when that bar comes
    before first_state_bar(params) (a history too short to have seeded every
    recurrence). An `is_closed` column marks closed bars; without one, all are.
    """
    return _tail_batch(frames, params, since, with_states=True)


def last_closed_position(candles: pd.DataFrame) -> int:
    """Position of the last closed bar (is_closed, or every bar if there is no such column); -1 if none."""
    if "is_closed" not in candles.columns:
        return len(candles) - 1
    closed = np.flatnonzero(candles["is_closed"].to_numpy(dtype=bool))
    return int(closed[-1]) if len(closed) else -1


def _tail_batch(
    frames: Mapping[Hashable, pd.DataFrame], params: IndicatorParams, since: Mapping[Hashable, Any], with_states: bool
) -> dict[Hashable, tuple[pd.DataFrame, IndicatorState | None]]:
    """{key: (tail frame, state or None)}: windows of one length computed as one block."""
    missing = [key for key in frames if key not in since]
    if missing:
        raise ValueError(f"no since timestamp for {missing[:5]}")
    tails = {key: _tail_window(candles, params, since[key]) for key, candles in frames.items()}
    by_length: dict[int, list[Hashable]] = defaultdict(list)
    for key, (window, _) in tails.items():
        by_length[len(window)].append(key)
    results: dict[Hashable, tuple[pd.DataFrame, IndicatorState | None]] = {}
    for keys in by_length.values():
        windows, first_new = zip(*(tails[key] for key in keys), strict=True)
        state_at = [last_closed_position(window) for window in windows] if with_states else None
        computed = _compute_windows(windows, first_new, params, state_at)
        results.update(zip(keys, computed, strict=True))
    return {key: results[key] for key in frames}


def _tail_window(candles: pd.DataFrame, params: IndicatorParams, since_ts: Any) -> tuple[pd.DataFrame, int]:
    """(the candles a tail needs, position of the first bar at or after since_ts in it)."""
    check_index(candles.index)
    if not candles.index.is_monotonic_increasing:
        raise ValueError("candles must be strictly ascending in ts, without duplicates")
    since = pd.Timestamp(since_ts)
    if since.tzinfo is None:
        raise ValueError(f"since_ts must be timezone-aware (UTC), got {since_ts!r}")
    first_new = int(candles.index.searchsorted(since, side="left"))
    start = max(0, first_new - warmup_bars(params))
    return candles.iloc[start:], first_new - start


def _compute_windows(
    windows: Sequence[pd.DataFrame],
    first_new: Sequence[int],
    params: IndicatorParams,
    state_at: Sequence[int] | None = None,
) -> list[tuple[pd.DataFrame, IndicatorState | None]]:
    """(frame from bar first_new[i] on, state at bar state_at[i] or None) for windows of one length."""
    prices = [checked_prices(window) for window in windows]
    bars = len(windows[0])
    if bars == 0 or (state_at is None and all(first == bars for first in first_new)):
        # Nothing new anywhere (or no bars at all): skip computing a warm-up only to drop it.
        empty = np.empty((len(INDICATOR_COLUMNS), 0))
        return [(indicator_frame(empty, np.empty(0, np.int8), window.index[:0]), None) for window in windows]
    high, low, close = price_rows(prices)
    positions = None if state_at is None else np.maximum(np.asarray(state_at, dtype=np.intp), 0)
    values, codes, hidden = indicator_block(high, low, close, params, snapshot_at=positions)
    frames = _window_frames(windows, first_new, values, codes)
    if state_at is None:
        return [(frame, None) for frame in frames]
    vectors = snapshot(values, hidden, high, low, close, positions, params)
    fingerprint = params_fingerprint(params)
    states = [
        IndicatorState(window.index[at], fingerprint, vector) if at >= first_state_bar(params) else None
        for window, at, vector in zip(windows, state_at, vectors, strict=True)
    ]
    return list(zip(frames, states, strict=True))


def _window_frames(
    windows: Sequence[pd.DataFrame], first_new: Sequence[int], values: np.ndarray, codes: np.ndarray
) -> list[pd.DataFrame]:
    """Each window's frame from its bar first_new[i] on, out of the block computed for all of them."""
    bars = len(windows[0])
    if len(windows) == 1:
        first = first_new[0]
        return [indicator_frame(values[:, 0, first:], codes[0, first:], windows[0].index[first:])]
    # One frame for every instrument's new rows, then cut: slicing a frame is ~10x
    # cheaper than building one, and this path builds a thousand.
    stamps = np.concatenate(
        [
            window.index.asi8[first:].view(f"datetime64[{window.index.unit}]")  # resolutions may differ
            for window, first in zip(windows, first_new, strict=True)
        ]
    )
    index = pd.DatetimeIndex(stamps, name="ts").tz_localize("UTC")
    rows = list(enumerate(first_new))
    everything = indicator_frame(
        np.concatenate([values[:, row, first:] for row, first in rows], axis=1),
        np.concatenate([codes[row, first:] for row, first in rows]),
        index,
    )
    ends = np.cumsum([bars - first for first in first_new])
    return [everything.iloc[end - (bars - first) : end] for end, first in zip(ends, first_new, strict=True)]
