"""The recursion state of the indicator set: what each recurrence carries from one closed bar to the next.

A state is one float64 vector per instrument: the EMA values, Wilder averages,
MACD's two EMAs and signal, the EMA channel, the last bar's high and low, and the
last N closes (the SMA and Bollinger windows; the newest is the previous close).
Every function here is pure and works on (instruments, ...) arrays: `snapshot`
takes states out of a computed indicator block, `advance` carries states over new
bars and returns those bars' values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from services.indicators.block import HIDDEN, INDICATOR_COLUMNS
from services.indicators.params import IndicatorParams
from services.indicators.regime import regime_codes
from services.indicators.smoothing import decay_recurrence
from services.indicators.windows import window_mean_std

__all__ = ["SCALARS", "STATE_VERSION", "IndicatorState", "advance", "closes_kept", "first_state_bar", "last_bar",
           "params_fingerprint", "snapshot", "state_width"]

# Bumped whenever the layout or the meaning of a field changes: it is part of the
# fingerprint, so states written by older code are refused, never misread.
STATE_VERSION = 1

# The scalar fields, in order; the kept closes follow them, oldest first.
_FROM_COLUMNS = ("ema_fast", "ema_slow", "ema_trend", "macd_signal", "atr", "adx", "channel_high", "channel_low")
SCALARS = (*_FROM_COLUMNS, *HIDDEN, "high", "low")
_FIELD = {name: position for position, name in enumerate(SCALARS)}
_CLOSES = len(SCALARS)


@dataclass(frozen=True, eq=False)
class IndicatorState:
    """One instrument's state: the last closed bar it covers, the params' fingerprint, and the vector."""

    last_ts: pd.Timestamp
    fingerprint: str
    vector: np.ndarray  # float64, SCALARS then the kept closes


def closes_kept(params: IndicatorParams) -> int:
    """Closes a state keeps: the longest rolling window (the newest close is also the previous close)."""
    return max(params.sma_fast, params.sma_slow, params.bb_period)


def state_width(params: IndicatorParams) -> int:
    """Length of a state vector under these params."""
    return _CLOSES + closes_kept(params)


def first_state_bar(params: IndicatorParams) -> int:
    """The first bar (from a series' start) a state can be taken at: every recurrence seeded, every window full."""
    return max(
        params.ema_fast - 1, params.ema_slow - 1, params.ema_trend - 1, params.channel - 1,
        params.macd_slow + params.macd_signal - 2, params.rsi, params.atr, 2 * params.adx - 1,
        closes_kept(params) - 1,
    )  # fmt: skip


def last_bar(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) of the bar each of the (instruments, width) states ends at."""
    return vectors[:, _FIELD["high"]], vectors[:, _FIELD["low"]], vectors[:, -1]


@lru_cache(maxsize=64)
def params_fingerprint(params: IndicatorParams) -> str:
    """A short stable digest of the params and STATE_VERSION: a state is only reused under the same one."""
    canonical = json.dumps({"state_version": STATE_VERSION, **asdict(params)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def snapshot(
    values: np.ndarray,
    hidden: dict[str, np.ndarray],
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    positions: np.ndarray,
    params: IndicatorParams,
) -> np.ndarray:
    """(instruments, state_width) states at bar positions[i] of row i of a computed block.

    `values` and `hidden` come from block.indicator_block(..., snapshot_at=positions);
    every position must be at least first_state_bar(params) into its row.
    """
    rows = np.arange(close.shape[0])
    states = np.empty((close.shape[0], state_width(params)))
    for name in _FROM_COLUMNS:
        states[:, _FIELD[name]] = values[INDICATOR_COLUMNS.index(name)][rows, positions]
    for name in HIDDEN:
        states[:, _FIELD[name]] = hidden[name]
    states[:, _FIELD["high"]] = high[rows, positions]
    states[:, _FIELD["low"]] = low[rows, positions]
    kept = closes_kept(params)
    states[:, _CLOSES:] = close[rows[:, None], positions[:, None] + np.arange(1 - kept, 1)]
    return states


def advance(
    states: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, params: IndicatorParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, regime codes, new states) for new bars (instruments, bars) that follow each state's bar.

    values[i] is INDICATOR_COLUMNS[i] as an (instruments, bars) array, as from the
    block; the new states are at each row's last bar. The inputs are left alone.
    """
    rows, bars = close.shape
    values = np.empty((len(INDICATOR_COLUMNS), rows, bars))
    if bars == 0:
        return values, np.empty((rows, 0), np.int8), states.copy()
    column = dict(zip(INDICATOR_COLUMNS, values, strict=True))
    hidden: dict[str, np.ndarray] = {}  # the HIDDEN averages, bar by bar
    field = {name: states[:, position] for name, position in _FIELD.items()}
    closes = np.concatenate((states[:, _CLOSES:], close), axis=1)
    kept = closes_kept(params)
    previous_close = closes[:, kept - 1 : kept - 1 + bars]
    _window_columns(closes, kept, params, column)
    _trend_columns(close, field, params, column, hidden)
    _strength_columns(high, low, close, previous_close, field, params, column, hidden)
    channel_alpha = 2.0 / (params.channel + 1)
    _smooth_into(np.stack((high, low)), channel_alpha, (field["channel_high"], field["channel_low"]),
                 (column["channel_high"], column["channel_low"]))
    codes = regime_codes(
        close, column["adx"], column["plus_di"], column["minus_di"],
        column["channel_high"], column["channel_low"], params.regime_adx_min, warmup=0,
    )  # fmt: skip
    return values, codes, _next_states(states, column, hidden, high, low, closes[:, -kept:])


def _next_states(
    states: np.ndarray, column: dict, hidden: dict, high: np.ndarray, low: np.ndarray, closes: np.ndarray
) -> np.ndarray:
    """The states after the last new bar: its column values, hidden averages, high, low and closes."""
    following = np.empty_like(states)
    for name in _FROM_COLUMNS:
        following[:, _FIELD[name]] = column[name][:, -1]
    for name in HIDDEN:
        following[:, _FIELD[name]] = hidden[name][:, -1]
    following[:, _FIELD["high"]] = high[:, -1]
    following[:, _FIELD["low"]] = low[:, -1]
    following[:, _CLOSES:] = closes
    return following


def _smooth(drive: np.ndarray, alpha: float, initial: np.ndarray) -> np.ndarray:
    """y[t] = (1 - alpha) y[t-1] + alpha drive[t] from y[-1] = initial, for (rows, bars) drives."""
    return decay_recurrence(drive, 1.0 - alpha, alpha, initial)


def _smooth_into(drives: np.ndarray, alpha: float, initial: tuple, outputs: tuple) -> None:
    """_smooth over stacked drives (series, rows, bars) sharing alpha, each into its output."""
    series, rows, bars = drives.shape
    smoothed = _smooth(drives.reshape(series * rows, bars), alpha, np.concatenate(initial))
    for output, values in zip(outputs, smoothed.reshape(series, rows, bars), strict=True):
        output[...] = values


def _window_columns(closes: np.ndarray, kept: int, params: IndicatorParams, column: dict) -> None:
    """SMAs and Bollinger bands from the kept closes plus the new ones, window by window."""
    bars = closes.shape[1] - kept

    def windows(period: int) -> np.ndarray:
        # Window of new bar j: closes[kept + j - period + 1 : kept + j + 1].
        return sliding_window_view(closes, period, axis=1)[:, kept - period + 1 : kept - period + 1 + bars]

    middle, deviation = window_mean_std(windows(params.bb_period))
    column["bb_middle"][...] = middle
    offset = deviation * params.bb_k
    np.add(middle, offset, out=column["bb_upper"])
    np.subtract(middle, offset, out=column["bb_lower"])
    for name, period in (("sma_fast", params.sma_fast), ("sma_slow", params.sma_slow)):
        column[name][...] = middle if period == params.bb_period else windows(period).mean(axis=-1)


def _trend_columns(close: np.ndarray, field: dict, params: IndicatorParams, column: dict, hidden: dict) -> None:
    """The three EMAs and MACD (line, signal, histogram), carried from the state."""
    for name, period in (("ema_fast", params.ema_fast), ("ema_slow", params.ema_slow),
                         ("ema_trend", params.ema_trend)):
        column[name][...] = _smooth(close, 2.0 / (period + 1), field[name])
    fast = _smooth(close, 2.0 / (params.macd_fast + 1), field["macd_fast"])
    slow = _smooth(close, 2.0 / (params.macd_slow + 1), field["macd_slow"])
    np.subtract(fast, slow, out=column["macd"])
    column["macd_signal"][...] = _smooth(column["macd"], 2.0 / (params.macd_signal + 1), field["macd_signal"])
    np.subtract(column["macd"], column["macd_signal"], out=column["macd_hist"])
    hidden["macd_fast"], hidden["macd_slow"] = fast, slow


def _strength_columns(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    previous_close: np.ndarray,
    field: dict,
    params: IndicatorParams,
    column: dict,
    hidden: dict,
) -> None:
    """RSI, ATR, +DI, -DI and ADX carried from the state, and their hidden averages."""
    change = close - previous_close
    alpha = 1.0 / params.rsi
    moves = np.stack((np.maximum(change, 0.0), np.abs(change)))
    _smooth_into(moves, alpha, (field["rsi_gain"], field["rsi_movement"]), moves)
    hidden["rsi_gain"], hidden["rsi_movement"] = moves
    _percent(moves[0], moves[1], out=column["rsi"])
    true_range = np.maximum(high, previous_close) - np.minimum(low, previous_close)
    column["atr"][...] = _smooth(true_range, 1.0 / params.atr, field["atr"])
    previous_high = np.concatenate((field["high"][:, None], high[:, :-1]), axis=1)
    previous_low = np.concatenate((field["low"][:, None], low[:, :-1]), axis=1)
    up, down = high - previous_high, previous_low - low
    directional = np.stack((np.maximum(up, 0.0) * (up > down), np.maximum(down, 0.0) * (down > up), true_range))
    carried = (field["plus_dm"], field["minus_dm"], field["di_range"])
    _smooth_into(directional, 1.0 / params.adx, carried, directional)
    hidden["plus_dm"], hidden["minus_dm"], hidden["di_range"] = directional
    with np.errstate(divide="ignore"):
        per_range = np.divide(100.0, directional[2])
    per_range[np.isinf(per_range)] = 0.0  # nothing has traded yet: DI 0, as in TA-Lib
    np.multiply(directional[0], per_range, out=column["plus_di"])
    np.multiply(directional[1], per_range, out=column["minus_di"])
    dx = _percent(np.abs(column["plus_di"] - column["minus_di"]), column["plus_di"] + column["minus_di"])
    column["adx"][...] = _smooth(dx, 1.0 / params.adx, field["adx"])


def _percent(numerator: np.ndarray, denominator: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """100 * (numerator / denominator), the block's order of operations; 0 where both are 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.divide(numerator, denominator, out=out)
    result[denominator == 0.0] = 0.0
    result *= 100.0
    return result
