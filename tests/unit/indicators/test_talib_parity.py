"""Every indicator column equals TA-Lib (default settings) from TA-Lib's first output bar on.

Both ways of getting there: the full history at once, and a recursion state carried
bar by bar (or in chunks) over the last bars.
"""

import numpy as np
import pandas as pd
import pytest
import talib

from services.indicators.engine import INDICATOR_COLUMNS, IndicatorParams, compute_indicators
from services.indicators.incremental import advance_state, build_state
from services.indicators.indicators import macd
from tests.utils.series import candles_from_closes, realistic_candles

BARS = 25_000
# RSI, ADX and the DIs live on a 0..100 scale; everything else is in price units.
PERCENT_COLUMNS = {"rsi", "adx", "plus_di", "minus_di"}
RELATIVE_TOLERANCE = 1e-9
CARRIED = 500  # bars carried from a state at the end of each series

SERIES = {
    # A typical coin around 100 with clustered volatility, drifting over a decade of scale.
    "hourly_around_100": dict(bars=BARS, seed=7),
    # A BTC-like price level with calmer bars: the large level stresses cancellation.
    "calm_around_30000": dict(bars=BARS, seed=11, price=30_000.0, volatility=0.003),
}


def talib_reference(candles: pd.DataFrame) -> dict[str, np.ndarray]:
    """The same indicator set computed by TA-Lib, keyed by our column names."""
    high, low, close = (candles[column].to_numpy() for column in ("high", "low", "close"))
    line, signal, histogram = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    return {
        "rsi": talib.RSI(close, timeperiod=14),
        "sma_fast": talib.SMA(close, timeperiod=20),
        "sma_slow": talib.SMA(close, timeperiod=50),
        "ema_fast": talib.EMA(close, timeperiod=20),
        "ema_slow": talib.EMA(close, timeperiod=50),
        "ema_trend": talib.EMA(close, timeperiod=200),
        "macd": line,
        "macd_signal": signal,
        "macd_hist": histogram,
        "adx": talib.ADX(high, low, close, timeperiod=14),
        "plus_di": talib.PLUS_DI(high, low, close, timeperiod=14),
        "minus_di": talib.MINUS_DI(high, low, close, timeperiod=14),
        "atr": talib.ATR(high, low, close, timeperiod=14),
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "channel_high": talib.EMA(high, timeperiod=33),
        "channel_low": talib.EMA(low, timeperiod=33),
    }


@pytest.fixture(scope="module", params=sorted(SERIES))
def series(request):
    candles = realistic_candles(**SERIES[request.param])
    return candles, compute_indicators(candles, IndicatorParams()), talib_reference(candles)


def test_the_reference_covers_every_indicator_column():
    assert set(talib_reference(realistic_candles(bars=300))) == set(INDICATOR_COLUMNS)


@pytest.mark.parametrize("column", INDICATOR_COLUMNS)
def test_column_starts_on_the_same_bar_as_talib(series, column):
    _, ours, reference = series
    # TA-Lib's unstable period is 0 by default, so its warm-up is exactly its lookback.
    np.testing.assert_array_equal(np.isnan(ours[column].to_numpy()), np.isnan(reference[column]))


@pytest.mark.parametrize("column", INDICATOR_COLUMNS)
def test_column_equals_talib_within_1e9_of_its_scale(series, column):
    candles, ours, reference = series
    ours_values, talib_values = ours[column].to_numpy(), reference[column]
    both = ~np.isnan(ours_values) & ~np.isnan(talib_values)
    # Compared from TA-Lib's very first output bar: the seeds are reproduced, not waited out.
    assert both.sum() > BARS - 300
    scale = 100.0 if column in PERCENT_COLUMNS else candles["close"].abs().max()
    worst = np.max(np.abs(ours_values[both] - talib_values[both]))
    assert worst <= RELATIVE_TOLERANCE * scale, f"{column}: worst difference {worst:.3e} vs scale {scale:.3e}"


def test_output_frame_has_exactly_the_contract_columns_and_types(series):
    candles, ours, _ = series
    assert list(ours.columns) == [*INDICATOR_COLUMNS, "regime"]
    assert ours.index.equals(candles.index)
    assert (ours.dtypes[list(INDICATOR_COLUMNS)] == np.float64).all()
    assert ours["regime"].dtype == object


def test_the_standalone_macd_formula_equals_talib(series):
    candles, _, reference = series
    close = candles["close"].to_numpy()[None, :]
    scale = candles["close"].abs().max()
    for ours, column in zip(macd(close, 12, 26, 9), ("macd", "macd_signal", "macd_hist"), strict=True):
        np.testing.assert_array_equal(np.isnan(ours[0]), np.isnan(reference[column]))
        assert np.nanmax(np.abs(ours[0] - reference[column])) <= RELATIVE_TOLERANCE * scale


def assert_equals_talib(ours: pd.DataFrame, reference: dict[str, np.ndarray], price_scale: float) -> None:
    """Every column of `ours` within 1e-9 of its scale of TA-Lib's, with the same NaN pattern."""
    for column in INDICATOR_COLUMNS:
        theirs = reference[column]
        np.testing.assert_array_equal(np.isnan(ours[column].to_numpy()), np.isnan(theirs), err_msg=column)
        scale = 100.0 if column in PERCENT_COLUMNS else price_scale
        worst = np.nanmax(np.abs(ours[column].to_numpy() - theirs), initial=0.0)
        assert worst <= RELATIVE_TOLERANCE * scale, f"{column}: worst difference {worst:.3e} vs scale {scale:.3e}"


def carry(candles: pd.DataFrame, chunks: list[int]) -> pd.DataFrame:
    """The last CARRIED bars from a state built on the bars before them, advanced chunk by chunk."""
    state = build_state(candles.iloc[:-CARRIED])
    frames, start = [], len(candles) - CARRIED
    for size in chunks:
        frame, state = advance_state(state, candles.iloc[start : start + size])
        frames.append(frame)
        start += size
    assert start == len(candles)
    return pd.concat(frames)


@pytest.mark.parametrize(
    "chunks",
    [[1] * CARRIED, [7] * 71 + [3], [64, 1, 200, 35, 200], [CARRIED]],
    ids=["one bar at a time", "chunks of 7", "uneven chunks", "all at once"],
)
def test_a_state_carried_for_500_bars_equals_talib_on_the_full_history(series, chunks):
    candles, _, reference = series
    ours = carry(candles, chunks)
    assert_equals_talib(ours, {column: values[-CARRIED:] for column, values in reference.items()},
                        candles["close"].abs().max())


def flat_after_a_ramp() -> pd.DataFrame:
    """A market that climbs from 50 to 100 and then stops trading: every window ends flat."""
    return candles_from_closes(np.concatenate((np.linspace(50.0, 100.0, 3_000), np.full(CARRIED, 100.0))), wick=0.0)


def test_flat_windows_give_bands_of_zero_width_like_talib():
    candles = flat_after_a_ramp()
    reference = talib_reference(candles)
    flat = slice(-CARRIED + 20, None)  # windows lying entirely in the flat stretch
    for ours in (compute_indicators(candles), carry(candles, [1] * CARRIED)):
        assert (ours["bb_upper"].iloc[flat] == 100.0).all() and (ours["bb_lower"].iloc[flat] == 100.0).all()
        assert (ours["bb_middle"].iloc[flat] == 100.0).all()
    np.testing.assert_array_equal(reference["bb_upper"][flat] - reference["bb_lower"][flat], 0.0)
    assert_equals_talib(compute_indicators(candles), reference, 100.0)
