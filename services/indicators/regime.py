"""Market regime per bar (trending up, trending down, ranging) from ADX, DI and the EMA channel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.indicators.params import IndicatorParams

__all__ = ["REGIMES", "REGIME_INPUTS", "classify_regime", "regime_codes", "regime_labels"]

REGIMES = ("trending_up", "trending_down", "ranging")

# Columns classify_regime reads: the candle close and five indicator columns.
REGIME_INPUTS = ("close", "adx", "plus_di", "minus_di", "channel_high", "channel_low")

# Code 0 is the warm-up (no regime yet); codes 1..3 index REGIMES + 1.
WARMUP_CODE = 0
_LABELS = np.array([None, *REGIMES], dtype=object)


def regime_codes(
    close: np.ndarray,
    adx: np.ndarray,
    plus_di: np.ndarray,
    minus_di: np.ndarray,
    channel_high: np.ndarray,
    channel_low: np.ndarray,
    adx_min: float,
    warmup: int | None = None,
) -> np.ndarray:
    """The rule of classify_regime on arrays, as int8 codes (0 warm-up, 1 up, 2 down, 3 ranging).

    `warmup`: the number of leading bars known to lack inputs (the engine knows it
    from the periods); without it, any NaN input marks its bar as warm-up.
    """
    trending = adx >= adx_min
    up = trending & (close > channel_high) & (plus_di > minus_di)
    down = trending & (close < channel_low) & (minus_di > plus_di)
    # up and down exclude each other (plus_di > minus_di vs minus_di > plus_di).
    codes = np.full(close.shape, 3, dtype=np.int8)
    codes -= 2 * up.view(np.int8) + down.view(np.int8)
    # NaN compares False everywhere above and would read as "ranging"; it is no regime yet.
    if warmup is None:
        codes[np.isnan(adx) | np.isnan(channel_high) | np.isnan(channel_low) | np.isnan(close)] = WARMUP_CODE
    else:
        codes[..., :warmup] = WARMUP_CODE
    return codes


def regime_labels(codes: np.ndarray) -> np.ndarray:
    """Object array of regime names (None for the warm-up) for int8 codes."""
    return np.take(_LABELS, codes)  # about twice as fast as _LABELS[codes] on object arrays


def classify_regime(frame: pd.DataFrame, params: IndicatorParams = IndicatorParams()) -> pd.Series:
    """Regime of each bar of `frame` (columns REGIME_INPUTS), as a Series of str or None.

    - trending_up:   ADX >= params.regime_adx_min and close > channel_high and plus_di > minus_di
    - trending_down: ADX >= params.regime_adx_min and close < channel_low  and minus_di > plus_di
    - ranging:       every other bar whose inputs are all known
    - None:          the warm-up, while ADX or the channel is still NaN

    A trend needs strength (ADX), direction (the dominant DI) and price outside
    the EMA channel of highs and lows; any one missing means no trend to follow.
    """
    missing = [column for column in REGIME_INPUTS if column not in frame.columns]
    if missing:
        raise ValueError(f"classify_regime needs columns {missing}")
    arrays = [frame[column].to_numpy(dtype=np.float64) for column in REGIME_INPUTS]
    codes = regime_codes(*arrays, adx_min=params.regime_adx_min)
    return pd.Series(regime_labels(codes), index=frame.index, name="regime", dtype=object)
