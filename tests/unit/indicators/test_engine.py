"""compute_indicators: the frame it returns, the input it refuses, and short or odd series."""

import datetime
import warnings
import zoneinfo

import numpy as np
import pandas as pd
import pytest
import pytz

from services.indicators.engine import INDICATOR_COLUMNS, REGIMES, IndicatorParams, compute_indicators
from tests.utils.series import candles_from_closes, realistic_candles

# First bar with a value under the default periods: TA-Lib's lookback of each indicator.
FIRST_VALUE_BAR = {
    "rsi": 14, "sma_fast": 19, "sma_slow": 49, "ema_fast": 19, "ema_slow": 49, "ema_trend": 199,
    "macd": 33, "macd_signal": 33, "macd_hist": 33, "adx": 27, "plus_di": 14, "minus_di": 14, "atr": 14,
    "bb_upper": 19, "bb_middle": 19, "bb_lower": 19, "channel_high": 32, "channel_low": 32,
}  # fmt: skip


def test_there_are_eighteen_indicator_columns_and_three_regimes():
    assert len(INDICATOR_COLUMNS) == len(set(INDICATOR_COLUMNS)) == 18
    assert REGIMES == ("trending_up", "trending_down", "ranging")


@pytest.mark.parametrize("column", INDICATOR_COLUMNS)
def test_each_column_is_nan_exactly_during_its_warmup(column):
    values = compute_indicators(realistic_candles(bars=1_000), IndicatorParams())[column]
    first = FIRST_VALUE_BAR[column]
    assert values.iloc[:first].isna().all() and values.iloc[first:].notna().all()


def test_the_input_frame_is_left_untouched():
    candles = realistic_candles(bars=500)
    before = candles.copy()
    compute_indicators(candles, IndicatorParams())
    pd.testing.assert_frame_equal(candles, before)


def test_extra_columns_and_integer_prices_are_fine():
    candles = candles_from_closes(np.arange(100, 400))
    candles["is_closed"] = True
    candles[["open", "high", "low", "close"]] = candles[["open", "high", "low", "close"]].round().astype(np.int64)
    values = compute_indicators(candles, IndicatorParams())
    assert (values[list(INDICATOR_COLUMNS)].dtypes == np.float64).all()


@pytest.mark.parametrize("bars", [0, 1, 2, 13, 40, 199])
def test_series_shorter_than_the_warmups_give_nan_without_warnings(bars):
    candles = realistic_candles(bars=max(bars, 1)).iloc[:bars]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = compute_indicators(candles, IndicatorParams())
    assert len(values) == bars and list(values.columns) == [*INDICATOR_COLUMNS, "regime"]
    for column, first in FIRST_VALUE_BAR.items():
        assert values[column].iloc[:first].isna().all()


def test_a_market_that_never_moves_gives_zero_strength_not_nan():
    values = compute_indicators(candles_from_closes(np.full(300, 50.0), wick=0.0), IndicatorParams())
    settled = values.iloc[40:]
    # TA-Lib reports 0 for 0/0 in RSI, DI and DX; the bands collapse onto the price.
    assert (settled[["rsi", "plus_di", "minus_di", "adx", "atr"]] == 0.0).all().all()
    assert (settled["macd"].abs() <= 1e-12 * 50.0).all()
    assert (settled["bb_upper"] == 50.0).all() and (settled["bb_lower"] == 50.0).all()
    assert (settled["regime"] == "ranging").all()


def test_a_coin_quoted_at_a_millionth_still_gets_real_values():
    candles = realistic_candles(bars=2_000, price=1e-6, volatility=0.001)
    values = compute_indicators(candles, IndicatorParams()).iloc[300:]
    assert values["rsi"].between(0.0, 100.0).all() and values["rsi"].std() > 1.0
    assert (values["plus_di"] > 0).all() and (values["bb_upper"] > values["bb_lower"]).all()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.drop(columns="volume"), "volume"),
        (lambda c: c.tz_convert(None), "UTC"),
        (lambda c: c.tz_convert("Europe/London"), "UTC"),  # at UTC's offset in winter only
        (lambda c: c.reset_index(drop=True), "UTC"),
        (lambda c: c.iloc[::-1], "ascending"),
        (lambda c: pd.concat([c.iloc[:5], c.iloc[4:]]), "duplicates"),
        (lambda c: c.assign(close=c["close"].where(c.index != c.index[50])), "'close'"),
        (lambda c: c.assign(high=np.inf), "'high'"),
    ],
)
def test_input_the_engine_would_miscompute_is_refused_with_the_reason(mutate, message):
    with pytest.raises(ValueError, match=message):
        compute_indicators(mutate(realistic_candles(bars=100)), IndicatorParams())


@pytest.mark.parametrize(
    "utc",
    [
        datetime.UTC,
        zoneinfo.ZoneInfo("UTC"),
        pytz.UTC,
        zoneinfo.ZoneInfo("Etc/UTC"),
    ],
    ids=str,
)
def test_a_utc_index_of_another_tz_implementation_is_accepted(utc):
    candles = realistic_candles(bars=300)
    expected = compute_indicators(candles, IndicatorParams())
    candles.index = candles.index.tz_convert(utc)
    values = compute_indicators(candles, IndicatorParams())
    assert values.index.equals(candles.index)
    pd.testing.assert_frame_equal(values.reset_index(drop=True), expected.reset_index(drop=True))
