"""Every indicator column equals TA-Lib (default settings) from TA-Lib's first output bar on."""

import numpy as np
import pandas as pd
import pytest
import talib

from services.indicators.engine import INDICATOR_COLUMNS, IndicatorParams, compute_indicators
from services.indicators.indicators import macd
from tests.utils.series import realistic_candles

BARS = 25_000
# RSI, ADX and the DIs live on a 0..100 scale; everything else is in price units.
PERCENT_COLUMNS = {"rsi", "adx", "plus_di", "minus_di"}
RELATIVE_TOLERANCE = 1e-9

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
