"""Regime per bar: the rule on hand-made indicator rows, and on whole trending or flat markets."""

import math

import numpy as np
import pandas as pd
import pytest

from services.indicators.engine import (
    REGIMES,
    IndicatorParams,
    classify_regime,
    compute_indicators,
    first_regime_bar,
)
from tests.utils.series import candles_from_closes, realistic_candles

NAN = math.nan


def indicator_rows(*rows: dict) -> pd.DataFrame:
    """A frame of classify_regime inputs; each row overrides a strong-uptrend default."""
    base = {"close": 110.0, "adx": 40.0, "plus_di": 30.0, "minus_di": 10.0, "channel_high": 105.0, "channel_low": 95.0}
    index = pd.date_range("2024-01-01", periods=len(rows), freq="1h", tz="UTC", name="ts")
    return pd.DataFrame([{**base, **row} for row in rows], index=index)


def regimes_of(*rows: dict, params: IndicatorParams = IndicatorParams()) -> list:
    return classify_regime(indicator_rows(*rows), params).tolist()


def test_strong_adx_close_above_the_channel_and_plus_di_leading_is_trending_up():
    assert regimes_of({}) == ["trending_up"]


def test_strong_adx_close_below_the_channel_and_minus_di_leading_is_trending_down():
    assert regimes_of({"close": 90.0, "plus_di": 10.0, "minus_di": 30.0}) == ["trending_down"]


def test_adx_exactly_at_the_threshold_counts_as_trending():
    assert regimes_of({"adx": 25.0}) == ["trending_up"]


@pytest.mark.parametrize(
    "weakness",
    [
        {"adx": 24.99},  # no strength
        {"close": 104.0},  # inside the channel
        {"close": 105.0},  # on the channel's edge is not beyond it
        {"plus_di": 10.0, "minus_di": 30.0},  # price up but sellers dominate
        {"plus_di": 20.0, "minus_di": 20.0},  # no dominant side
    ],
)
def test_an_uptrend_missing_any_one_condition_is_ranging(weakness):
    assert regimes_of(weakness) == ["ranging"]


def test_a_downtrend_with_plus_di_leading_is_ranging():
    assert regimes_of({"close": 90.0, "plus_di": 30.0, "minus_di": 10.0}) == ["ranging"]


@pytest.mark.parametrize("missing", ["adx", "channel_high", "channel_low", "close"])
def test_a_bar_still_warming_up_has_no_regime(missing):
    assert regimes_of({missing: NAN}, {}) == [None, "trending_up"]


def test_the_adx_threshold_comes_from_the_params():
    assert regimes_of({"adx": 30.0}, params=IndicatorParams(regime_adx_min=35.0)) == ["ranging"]


def test_classify_regime_names_the_columns_it_lacks():
    with pytest.raises(ValueError, match="channel_low"):
        classify_regime(indicator_rows({}).drop(columns="channel_low"), IndicatorParams())


def test_classify_regime_keeps_the_index_and_gives_object_values():
    frame = indicator_rows({}, {"adx": 5.0})
    regime = classify_regime(frame, IndicatorParams())
    assert regime.index.equals(frame.index)
    assert regime.dtype == object
    assert set(regime) <= set(REGIMES)


def settled_regimes(candles: pd.DataFrame) -> pd.Series:
    regime = compute_indicators(candles, IndicatorParams())["regime"]
    warmup = first_regime_bar(IndicatorParams())
    assert regime.iloc[:warmup].isna().all() and regime.iloc[warmup:].notna().all()
    return regime.iloc[warmup:]


def test_a_clear_uptrend_is_trending_up():
    candles = realistic_candles(bars=600, seed=1, drift=0.003, volatility=0.002)
    assert (settled_regimes(candles).iloc[100:] == "trending_up").all()


def test_a_clear_downtrend_is_trending_down():
    candles = realistic_candles(bars=600, seed=2, drift=-0.003, volatility=0.002)
    assert (settled_regimes(candles).iloc[100:] == "trending_down").all()


@pytest.mark.parametrize("seed", range(5))
def test_a_flat_noisy_market_is_ranging(seed):
    # Closes scatter around 100 inside candles whose wicks reach 2% out: no trend.
    closes = 100.0 * np.exp(np.random.default_rng(seed).normal(0.0, 0.005, 600))
    assert (settled_regimes(candles_from_closes(closes, wick=0.02)) == "ranging").all()


def test_compute_indicators_regime_matches_classify_regime_on_its_own_output():
    candles = realistic_candles(bars=3_000, seed=9)
    values = compute_indicators(candles, IndicatorParams())
    again = classify_regime(values.join(candles["close"]), IndicatorParams())
    assert values["regime"].tolist() == again.tolist()
    assert set(values["regime"].dropna()) == set(REGIMES)
