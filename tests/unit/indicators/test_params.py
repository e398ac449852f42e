"""IndicatorParams: contract defaults, overrides from a mapping, and errors that name the field."""

import dataclasses

import numpy as np
import pytest

from services.indicators.params import IndicatorParams

DEFAULTS = {
    "rsi": 14, "sma_fast": 20, "sma_slow": 50, "ema_fast": 20, "ema_slow": 50, "ema_trend": 200,
    "macd_fast": 12, "macd_slow": 26, "macd_signal": 9, "adx": 14, "atr": 14, "bb_period": 20,
    "bb_k": 2.0, "channel": 33, "regime_adx_min": 25.0,
}  # fmt: skip


def test_defaults_are_the_contract_values():
    assert dataclasses.asdict(IndicatorParams()) == DEFAULTS


def test_from_mapping_overrides_only_the_given_fields():
    params = IndicatorParams.from_mapping({"rsi": 21, "bb_k": 2.5})
    assert (params.rsi, params.bb_k) == (21, 2.5)
    assert params.ema_trend == 200


def test_from_an_empty_or_missing_mapping_gives_the_defaults():
    assert IndicatorParams.from_mapping({}) == IndicatorParams.from_mapping(None) == IndicatorParams()


def test_params_are_frozen_and_hashable():
    params = IndicatorParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.rsi = 3
    assert hash(params) == hash(IndicatorParams())


def test_numpy_integers_are_accepted_as_plain_ints():
    params = IndicatorParams.from_mapping({"rsi": np.int64(10)})
    assert params.rsi == 10 and type(params.rsi) is int


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rsi", 0), ("adx", -3), ("atr", 1), ("channel", 14.5),
        ("ema_trend", "200"), ("bb_period", True), ("macd_signal", None),
    ],
)
def test_a_period_that_is_not_an_integer_of_at_least_two_names_its_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field} must be an integer >= 2"):
        IndicatorParams.from_mapping({field: value})


@pytest.mark.parametrize(
    ("fast", "slow"), [("sma_fast", "sma_slow"), ("ema_fast", "ema_slow"), ("macd_fast", "macd_slow")]
)
def test_a_fast_period_not_below_its_slow_one_names_both(fast, slow):
    with pytest.raises(ValueError, match=rf"{fast} must be less than {slow}"):
        IndicatorParams.from_mapping({fast: 60, slow: 60})


@pytest.mark.parametrize(("field", "value"), [("bb_k", 0.0), ("bb_k", -1.0), ("bb_k", float("nan")), ("bb_k", "2")])
def test_a_non_positive_or_non_numeric_band_width_names_bb_k(field, value):
    with pytest.raises(ValueError, match=field):
        IndicatorParams.from_mapping({field: value})


@pytest.mark.parametrize("value", [-1.0, 100.5, float("inf")])
def test_an_adx_threshold_off_the_adx_scale_names_regime_adx_min(value):
    with pytest.raises(ValueError, match="regime_adx_min"):
        IndicatorParams.from_mapping({"regime_adx_min": value})


def test_an_unknown_key_is_named_rather_than_ignored():
    with pytest.raises(ValueError, match="'rsi_period'"):
        IndicatorParams.from_mapping({"rsi_period": 14})


def test_direct_construction_validates_too():
    with pytest.raises(ValueError, match="sma_fast"):
        IndicatorParams(sma_fast=80)
