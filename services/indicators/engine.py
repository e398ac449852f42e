"""The indicator engine: candles in, one wide indicator frame out; full history or just the tail."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from services.indicators.indicators import (
    average_true_range,
    bollinger_bands,
    directional_movement_index,
    exponential_moving_average,
    macd,
    relative_strength_index,
    simple_moving_average,
)
from services.indicators.params import IndicatorParams
from services.indicators.regime import REGIMES, classify_regime, regime_codes, regime_labels

__all__ = [
    "INDICATOR_COLUMNS",
    "REGIMES",
    "TAIL_TOLERANCE",
    "IndicatorParams",
    "classify_regime",
    "compute_indicators",
    "compute_tail",
    "compute_tail_batch",
    "first_regime_bar",
    "warmup_bars",
]

# The 18 float64 columns of every indicator frame, in order; `regime` follows them.
INDICATOR_COLUMNS = (
    "rsi", "sma_fast", "sma_slow", "ema_fast", "ema_slow", "ema_trend",
    "macd", "macd_signal", "macd_hist", "adx", "plus_di", "minus_di", "atr",
    "bb_upper", "bb_middle", "bb_lower", "channel_high", "channel_low",
)  # fmt: skip
CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("high", "low", "close")
_BOLLINGER = slice(INDICATOR_COLUMNS.index("bb_upper"), INDICATOR_COLUMNS.index("bb_lower") + 1)

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
    return _compute_windows([candles], [0], params)[0]


def compute_tail(candles: pd.DataFrame, params: IndicatorParams, since_ts: Any) -> pd.DataFrame:
    """Indicators for the bars at or after `since_ts`, from only the history they need.

    Uses the last warmup_bars(params) bars before `since_ts` plus every bar from it,
    so an hourly update costs O(new bars) and still equals compute_indicators on
    the full history to within 1e-9 of the price scale.
    """
    window, first_new = _tail_window(candles, params, since_ts)
    return _compute_windows([window], [first_new], params)[0]


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
    missing = [key for key in frames if key not in since]
    if missing:
        raise ValueError(f"no since timestamp for {missing[:5]}")
    tails = {key: _tail_window(candles, params, since[key]) for key, candles in frames.items()}
    by_length: dict[int, list[Hashable]] = defaultdict(list)
    for key, (window, _) in tails.items():
        by_length[len(window)].append(key)
    results: dict[Hashable, pd.DataFrame] = {}
    for keys in by_length.values():
        windows, first_new = zip(*(tails[key] for key in keys), strict=True)
        results.update(zip(keys, _compute_windows(windows, first_new, params), strict=True))
    return {key: results[key] for key in frames}


def _tail_window(candles: pd.DataFrame, params: IndicatorParams, since_ts: Any) -> tuple[pd.DataFrame, int]:
    """(the candles a tail needs, position of the first bar at or after since_ts in it)."""
    _check_index(candles.index)
    if not candles.index.is_monotonic_increasing:
        raise ValueError("candles must be strictly ascending in ts, without duplicates")
    since = pd.Timestamp(since_ts)
    if since.tzinfo is None:
        raise ValueError(f"since_ts must be timezone-aware (UTC), got {since_ts!r}")
    first_new = int(candles.index.searchsorted(since, side="left"))
    start = max(0, first_new - warmup_bars(params))
    return candles.iloc[start:], first_new - start


def _compute_windows(
    windows: Sequence[pd.DataFrame], first_new: Sequence[int], params: IndicatorParams
) -> list[pd.DataFrame]:
    """Indicator frames of windows of one length, each from its bar first_new[i] on."""
    prices = [_checked_prices(window) for window in windows]
    bars = len(windows[0])
    if all(first == bars for first in first_new):
        # Nothing new anywhere (or no bars at all): skip computing a warm-up only to drop it.
        empty = np.empty((len(INDICATOR_COLUMNS), 0))
        return [_indicator_frame(empty, np.empty(0, np.int8), window.index[:0]) for window in windows]
    high, low, close = _price_rows(prices)
    values, codes = _indicator_block(high, low, close, params)
    if len(windows) == 1:
        first = first_new[0]
        return [_indicator_frame(values[:, 0, first:], codes[0, first:], windows[0].index[first:])]
    # One frame for every instrument's new rows, then cut: slicing a frame is ~10x
    # cheaper than building one, and this path builds a thousand.
    stamps = np.concatenate(
        [
            window.index.asi8[first:].view(f"datetime64[{window.index.unit}]")  # resolutions may differ
            for window, first in zip(windows, first_new, strict=True)
        ]
    )
    index = pd.DatetimeIndex(stamps, name="ts").tz_localize("UTC")
    rows = [(row, first) for row, first in enumerate(first_new)]
    everything = _indicator_frame(
        np.concatenate([values[:, row, first:] for row, first in rows], axis=1),
        np.concatenate([codes[row, first:] for row, first in rows]),
        index,
    )
    ends = np.cumsum([bars - first for first in first_new])
    return [everything.iloc[end - (bars - first) : end] for end, first in zip(ends, first_new, strict=True)]


# A winter and a summer instant: a zone at offset zero at both is UTC under some name
# (UTC, Etc/UTC, pytz.UTC, …); one with daylight saving is not.
_PROBES = (datetime(2001, 1, 15), datetime(2001, 7, 15))


def _check_index(index: pd.Index) -> None:
    """Refuse an index that is not UTC timestamps: mixed zones would misalign bars."""
    tz = index.tz if isinstance(index, pd.DatetimeIndex) else None
    if tz is None or any(tz.utcoffset(probe) != timedelta(0) for probe in _PROBES):
        raise ValueError("candles must be indexed by a UTC DatetimeIndex (ts)")


def _checked_prices(candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) of candles the engine can compute on; ValueError naming what is wrong."""
    missing = [column for column in CANDLE_COLUMNS if column not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    index = candles.index
    _check_index(index)
    stamps = index.asi8
    if not (stamps[1:] > stamps[:-1]).all():
        raise ValueError("candles must be strictly ascending in ts, without duplicates")
    prices = tuple(candles[column].to_numpy(dtype=np.float64) for column in PRICE_COLUMNS)
    for column, values in zip(PRICE_COLUMNS, prices, strict=True):
        # A NaN would poison every recursive average from that bar on. The sum is
        # finite exactly when every price is (prices are far below float overflow).
        if not np.isfinite(values.sum()):
            raise ValueError(f"candles column {column!r} has NaN or infinite values")
    return prices


def _price_rows(prices: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) as (instruments, bars) arrays; every instrument has the same bars."""
    if len(prices) == 1:
        # One instrument: read-only views of its columns, no copy.
        return tuple(values[None, :] for values in prices[0])
    stacked = np.empty((len(PRICE_COLUMNS), len(prices), len(prices[0][0])))
    for row, columns in enumerate(prices):
        for field, values in enumerate(columns):
            stacked[field, row] = values
    return stacked[0], stacked[1], stacked[2]


def _indicator_block(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, params: IndicatorParams
) -> tuple[np.ndarray, np.ndarray]:
    """(values, regime codes): values[i] is INDICATOR_COLUMNS[i] as an (instruments, bars) array."""
    values = np.empty((len(INDICATOR_COLUMNS), *close.shape))
    column = dict(zip(INDICATOR_COLUMNS, values, strict=True))
    relative_strength_index(close, params.rsi, out=column["rsi"])
    bollinger_bands(close, params.bb_period, params.bb_k, out=values[_BOLLINGER])
    for name, period in (("sma_fast", params.sma_fast), ("sma_slow", params.sma_slow)):
        if period == params.bb_period:
            column[name][...] = column["bb_middle"]  # the same SMA: copy, don't recompute
        else:
            simple_moving_average(close, period, out=column[name])
    exponential_moving_average(close, params.ema_fast, out=column["ema_fast"])
    exponential_moving_average(close, params.ema_slow, out=column["ema_slow"])
    exponential_moving_average(close, params.ema_trend, out=column["ema_trend"])
    macd(
        close, params.macd_fast, params.macd_slow, params.macd_signal,
        out=(column["macd"], column["macd_signal"], column["macd_hist"]),
    )  # fmt: skip
    average_true_range(high, low, close, params.atr, out=column["atr"])
    directional_movement_index(
        high, low, close, params.adx,
        average_range=column["atr"] if params.atr == params.adx else None,
        out=(column["plus_di"], column["minus_di"], column["adx"]),
    )  # fmt: skip
    exponential_moving_average(high, params.channel, out=column["channel_high"])
    exponential_moving_average(low, params.channel, out=column["channel_low"])
    codes = regime_codes(
        close, column["adx"], column["plus_di"], column["minus_di"],
        column["channel_high"], column["channel_low"], params.regime_adx_min,
        warmup=first_regime_bar(params),
    )  # fmt: skip
    return values, codes


def first_regime_bar(params: IndicatorParams) -> int:
    """The first bar with a regime: when both the ADX and the EMA channel exist."""
    return max(2 * params.adx - 1, params.channel - 1)


def _indicator_frame(values: np.ndarray, codes: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The public frame from an (18, bars) block and regime codes, without copying the block."""
    frame = pd.DataFrame(values.T, index=index, columns=list(INDICATOR_COLUMNS), copy=False)
    # object dtype keeps None (not NaN) for the warm-up, as the contract says.
    frame.insert(len(INDICATOR_COLUMNS), "regime", pd.Series(regime_labels(codes), index=index, dtype=object))
    return frame
