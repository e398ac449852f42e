"""The indicator block: all 18 indicators and the regime codes of (instruments, bars) price arrays."""

from __future__ import annotations

import numpy as np

from services.indicators.indicators import (
    average_true_range,
    bollinger_bands,
    directional_averages,
    directional_movement_index,
    directional_range_at,
    exponential_moving_average,
    macd_averages,
    macd_from_averages,
    relative_strength_index,
    rsi_averages,
    simple_moving_average,
)
from services.indicators.params import IndicatorParams
from services.indicators.regime import regime_codes
from services.indicators.spare import empty_block

__all__ = ["HIDDEN", "INDICATOR_COLUMNS", "first_regime_bar", "indicator_block"]

# The 18 float64 columns of every indicator frame, in order; `regime` follows them.
INDICATOR_COLUMNS = (
    "rsi", "sma_fast", "sma_slow", "ema_fast", "ema_slow", "ema_trend",
    "macd", "macd_signal", "macd_hist", "adx", "plus_di", "minus_di", "atr",
    "bb_upper", "bb_middle", "bb_lower", "channel_high", "channel_low",
)  # fmt: skip
_BOLLINGER = slice(INDICATOR_COLUMNS.index("bb_upper"), INDICATOR_COLUMNS.index("bb_lower") + 1)

# Averages the recurrences carry that no output column shows: what a state needs
# besides the columns themselves (see services/indicators/state.py).
HIDDEN = ("macd_fast", "macd_slow", "rsi_gain", "rsi_movement", "plus_dm", "minus_dm", "di_range")

# The strength columns' temporaries live in rows the trend columns write afterwards (each
# temporary: its first row, rows): every row of a fresh block is zeroed by the kernel on first
# touch, so a temporary of its own would be one more fresh array to pay for.
_LENT = {
    "rsi_moves": ("sma_fast", 2), "rsi_averages": ("ema_fast", 2),
    "dm_moves": ("ema_trend", 2), "dm_averages": ("macd_signal", 2),
    "true_range": ("bb_upper", 1), "dm_scratch": ("bb_middle", 1),
}  # fmt: skip


def first_regime_bar(params: IndicatorParams) -> int:
    """The first bar with a regime: when both the ADX and the EMA channel exist."""
    return max(2 * params.adx - 1, params.channel - 1)


def indicator_block(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    params: IndicatorParams,
    snapshot_at: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray] | None]:
    """(values, regime codes, hidden): values[i] is INDICATOR_COLUMNS[i] as an (instruments, bars) array.

    With `snapshot_at` (one bar position per instrument), `hidden` holds each
    HIDDEN average at that bar, per instrument; otherwise it is None.
    """
    values = empty_block((len(INDICATOR_COLUMNS), *close.shape))
    column = dict(zip(INDICATOR_COLUMNS, values, strict=True))
    at = None if snapshot_at is None else (np.arange(close.shape[0]), snapshot_at)
    hidden: dict[str, np.ndarray] | None = None if at is None else {}
    _strength_columns(high, low, close, params, column, hidden, at, _lent_rows(values))
    _trend_columns(close, params, values, column, hidden, at)
    exponential_moving_average(high, params.channel, out=column["channel_high"])
    exponential_moving_average(low, params.channel, out=column["channel_low"])
    codes = regime_codes(
        close, column["adx"], column["plus_di"], column["minus_di"],
        column["channel_high"], column["channel_low"], params.regime_adx_min,
        warmup=first_regime_bar(params),
    )  # fmt: skip
    return values, codes, hidden


def _lent_rows(values: np.ndarray) -> dict[str, np.ndarray]:
    """Each _LENT temporary as a view of its rows of the block (one row: (instruments, bars))."""
    lent = {}
    for name, (first, rows) in _LENT.items():
        start = INDICATOR_COLUMNS.index(first)
        lent[name] = values[start] if rows == 1 else values[start : start + rows]
    return lent


def _strength_columns(
    high, low, close, params: IndicatorParams, column: dict, hidden: dict | None, at, lent: dict
) -> None:
    """RSI, ATR, +DI, -DI and ADX into their columns; their hidden averages at `at`, if asked.

    `lent`: scratch rows of the block (see _LENT), written over by the trend columns later.
    """
    averages = rsi_averages(close, params.rsi, moves=lent["rsi_moves"], out=lent["rsi_averages"])
    relative_strength_index(close, params.rsi, out=column["rsi"], averages=averages)
    average_true_range(high, low, close, params.atr, out=column["atr"], ranges=lent["true_range"])
    # The DI's smoothed range is the ATR's when their periods agree (not smoothed twice).
    shared_range = column["atr"] if params.atr == params.adx else None
    moves = directional_averages(high, low, params.adx, moves=lent["dm_moves"], out=lent["dm_averages"])
    if hidden is not None:
        hidden["rsi_gain"], hidden["rsi_movement"] = averages[0][at], averages[1][at]
        hidden["plus_dm"], hidden["minus_dm"] = moves[0][at], moves[1][at]
        hidden["di_range"] = directional_range_at(high, low, close, params.adx, at[1], shared_range)
    directional_movement_index(
        high, low, close, params.adx, average_range=shared_range,
        out=(column["plus_di"], column["minus_di"], column["adx"]), averages=moves, scratch=lent["dm_scratch"],
    )  # fmt: skip


def _trend_columns(close, params: IndicatorParams, values, column: dict, hidden: dict | None, at) -> None:
    """Bollinger bands, SMAs, EMAs and MACD into their columns; MACD's two EMAs at `at`, if asked."""
    bollinger_bands(close, params.bb_period, params.bb_k, out=values[_BOLLINGER])
    for name, period in (("sma_fast", params.sma_fast), ("sma_slow", params.sma_slow)):
        if period == params.bb_period:
            column[name][...] = column["bb_middle"]  # the same SMA: copy, don't recompute
        else:
            simple_moving_average(close, period, out=column[name])
    exponential_moving_average(close, params.ema_fast, out=column["ema_fast"])
    exponential_moving_average(close, params.ema_slow, out=column["ema_slow"])
    exponential_moving_average(close, params.ema_trend, out=column["ema_trend"])
    # MACD's EMAs are written where its line and histogram go, then overwritten by them.
    fast_ema, slow_ema = macd_averages(
        close, params.macd_fast, params.macd_slow, out=(column["macd_hist"], column["macd"])
    )
    if hidden is not None:
        hidden["macd_fast"], hidden["macd_slow"] = fast_ema[at], slow_ema[at]
    macd_from_averages(
        fast_ema, slow_ema, params.macd_slow, params.macd_signal,
        out=(column["macd"], column["macd_signal"], column["macd_hist"]),
    )  # fmt: skip
