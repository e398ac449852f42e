"""Signal strategies on constructed candles and indicators that must, or must not, fire."""

import json
import math

import pandas as pd
import pytest

from services.signals.rules import (
    SIGNAL_COLUMNS,
    STRATEGIES,
    EmaChannelBreakoutParams,
    MacdCrossAdxParams,
    RsiMeanReversionParams,
    ema_channel_breakout,
    generate_signals,
    macd_cross_adx,
    rsi_mean_reversion,
)
from tests.utils.candles import closes, indicators

NAN = math.nan
UP, DOWN, RANGING = "trending_up", "trending_down", "ranging"


def breakout_case(prices, regime, channel_high=(102, 102, 102), channel_low=(95, 95, 95)):
    candles = closes(prices)
    return candles, indicators(candles.index, regime=regime, channel_high=channel_high, channel_low=channel_low)


def rsi_case(rsi, regime=None):
    candles = closes([100.0] * len(rsi))
    return candles, indicators(candles.index, regime=regime or [RANGING] * len(rsi), rsi=rsi)


def macd_case(macd, adx=(25, 25, 25), signal=(0, 0, 0)):
    candles = closes([100.0] * len(macd))
    return candles, indicators(candles.index, macd=macd, macd_signal=signal, adx=adx)


def sides(signals):
    return list(zip(signals["ts"], signals["side"], strict=True))


# ema_channel_breakout


def test_breakout_buys_a_close_crossing_above_the_channel_in_an_uptrend():
    candles, ind = breakout_case([100, 101, 104], [UP] * 3)
    signals = ema_channel_breakout(candles, ind)
    assert sides(signals) == [(candles.index[2], "buy")]
    assert signals["price"].tolist() == [104.0]
    assert signals["strength"].tolist() == pytest.approx([2 / (0.5 * 7)])  # 2 past, half of a 7-wide channel


def test_breakout_sells_a_close_crossing_below_the_channel_in_a_downtrend():
    candles, ind = breakout_case([100, 96, 93], [DOWN] * 3)
    signals = ema_channel_breakout(candles, ind)
    assert sides(signals) == [(candles.index[2], "sell")]
    assert signals["strength"].tolist() == pytest.approx([2 / 3.5])


@pytest.mark.parametrize("regime", [RANGING, DOWN, None])
def test_breakout_does_not_buy_outside_an_uptrend(regime):
    candles, ind = breakout_case([100, 101, 104], [regime] * 3)
    assert ema_channel_breakout(candles, ind).empty


def test_breakout_does_not_sell_outside_a_downtrend():
    candles, ind = breakout_case([100, 96, 93], [UP] * 3)
    assert ema_channel_breakout(candles, ind).empty


def test_breakout_needs_a_cross_not_a_close_already_above_the_channel():
    candles, ind = breakout_case([103, 104, 105], [UP] * 3)
    assert ema_channel_breakout(candles, ind).empty


def test_breakout_is_silent_while_the_channel_is_warming_up():
    candles, ind = breakout_case([100, 101, 104], [None, None, UP], channel_high=(NAN, NAN, 102))
    assert ema_channel_breakout(candles, ind).empty


def test_breakout_strength_is_capped_at_one():
    candles, ind = breakout_case([100, 101, 130], [UP] * 3)
    assert ema_channel_breakout(candles, ind)["strength"].tolist() == [1.0]


# rsi_mean_reversion


def test_rsi_buys_a_cross_up_through_oversold_in_a_range():
    candles, ind = rsi_case([25, 28, 33])
    signals = rsi_mean_reversion(candles, ind)
    assert sides(signals) == [(candles.index[2], "buy")]
    assert signals["strength"].tolist() == pytest.approx([0.3])  # 3 points past 30, full at 10


def test_rsi_sells_a_cross_down_through_overbought_in_a_range():
    candles, ind = rsi_case([75, 72, 68])
    signals = rsi_mean_reversion(candles, ind)
    assert sides(signals) == [(candles.index[2], "sell")]
    assert signals["strength"].tolist() == pytest.approx([0.2])


@pytest.mark.parametrize("regime", [UP, DOWN, None])
def test_rsi_does_not_trade_outside_a_range(regime):
    candles, ind = rsi_case([25, 28, 33], regime=[regime] * 3)
    assert rsi_mean_reversion(candles, ind).empty


def test_rsi_staying_oversold_is_no_signal():
    candles, ind = rsi_case([20, 25, 29])
    assert rsi_mean_reversion(candles, ind).empty


def test_rsi_reaching_exactly_the_threshold_has_not_crossed_it_yet():
    candles, ind = rsi_case([25, 28, 30, 31])
    assert sides(rsi_mean_reversion(candles, ind)) == [(candles.index[3], "buy")]


def test_rsi_is_silent_when_the_previous_value_is_unknown():
    candles, ind = rsi_case([25, NAN, 33])
    assert rsi_mean_reversion(candles, ind).empty


def test_rsi_thresholds_come_from_the_params():
    candles, ind = rsi_case([15, 18, 22])
    assert rsi_mean_reversion(candles, ind).empty
    signals = rsi_mean_reversion(candles, ind, RsiMeanReversionParams(oversold=20))
    assert signals["side"].tolist() == ["buy"]


# macd_cross_adx


def test_macd_buys_a_cross_above_its_signal_line_while_adx_shows_a_trend():
    candles, ind = macd_case([-1, -0.5, 0.2])
    signals = macd_cross_adx(candles, ind)
    assert sides(signals) == [(candles.index[2], "buy")]
    assert signals["strength"].tolist() == pytest.approx([0.25])  # ADX 25: a quarter of the way 20 -> 40


def test_macd_sells_a_cross_below_its_signal_line_while_adx_shows_a_trend():
    candles, ind = macd_case([1, 0.5, -0.2], adx=(45, 45, 45))
    signals = macd_cross_adx(candles, ind)
    assert sides(signals) == [(candles.index[2], "sell")]
    assert signals["strength"].tolist() == [1.0]


def test_macd_cross_is_ignored_when_adx_is_below_the_minimum():
    candles, ind = macd_case([-1, -0.5, 0.2], adx=(15, 15, 19.9))
    assert macd_cross_adx(candles, ind).empty


def test_macd_cross_fires_at_exactly_the_minimum_adx_with_zero_strength():
    candles, ind = macd_case([-1, -0.5, 0.2], adx=(20, 20, 20))
    assert macd_cross_adx(candles, ind)["strength"].tolist() == [0.0]


def test_macd_staying_above_its_signal_line_is_no_signal():
    candles, ind = macd_case([0.1, 0.5, 0.9])
    assert macd_cross_adx(candles, ind).empty


def test_macd_is_silent_while_adx_is_warming_up():
    candles, ind = macd_case([-1, -0.5, 0.2], adx=(NAN, NAN, NAN))
    assert macd_cross_adx(candles, ind).empty


def test_a_strategy_refuses_indicators_missing_a_column_it_needs():
    candles, ind = macd_case([-1, -0.5, 0.2])
    with pytest.raises(ValueError, match="adx"):
        macd_cross_adx(candles, ind.drop(columns="adx"))


# inputs reproduce the decision

CASES = {
    "ema_channel_breakout": breakout_case([100, 101, 104], [UP] * 3),
    "rsi_mean_reversion": rsi_case([75, 72, 68]),
    "macd_cross_adx": macd_case([-1, -0.5, 0.2]),
}


def replay(name, inputs):
    """Run the strategy again on the two bars described by `inputs` alone."""
    rule, defaults = STRATEGIES[name]
    columns = [key for key in inputs if key not in ("params", "close") and not key.startswith("prev_")]
    candles = closes([inputs["prev_close"], inputs["close"]])
    ind = pd.DataFrame({col: [inputs[f"prev_{col}"], inputs[col]] for col in columns}, index=candles.index)
    return rule(candles, ind, type(defaults)(**inputs["params"]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_inputs_are_plain_json(name):
    signal = STRATEGIES[name][0](*CASES[name], STRATEGIES[name][1]).iloc[0]
    assert json.loads(json.dumps(signal["inputs"])) == signal["inputs"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_inputs_alone_reproduce_the_signal(name):
    signal = STRATEGIES[name][0](*CASES[name], STRATEGIES[name][1]).iloc[0]
    again = replay(name, json.loads(json.dumps(signal["inputs"]))).iloc[0]
    assert (again["side"], again["price"]) == (signal["side"], signal["price"])
    assert again["strength"] == pytest.approx(signal["strength"])
    assert again["inputs"] == signal["inputs"]


def test_inputs_name_the_indicator_values_and_the_params():
    candles, ind = CASES["ema_channel_breakout"]
    inputs = ema_channel_breakout(candles, ind, EmaChannelBreakoutParams(full_strength_width=1.0))["inputs"][0]
    assert inputs == {
        "close": 104.0,
        "prev_close": 101.0,
        "channel_high": 102.0,
        "prev_channel_high": 102.0,
        "channel_low": 95.0,
        "prev_channel_low": 95.0,
        "regime": UP,
        "prev_regime": UP,
        "params": {"full_strength_width": 1.0},
    }


# generate_signals


def all_strategies_case():
    """Breakout and MACD buy on bar 2 (uptrend); RSI buys on bar 4 (range)."""
    candles = closes([100, 101, 104, 104, 104])
    ind = indicators(
        candles.index,
        regime=[UP, UP, UP, RANGING, RANGING],
        channel_high=[102] * 5,
        channel_low=[95] * 5,
        rsi=[50, 50, 50, 25, 35],
        macd=[-1, -1, 1, 1, 1],
        macd_signal=[0] * 5,
        adx=[30] * 5,
    )
    return candles, ind


def test_generate_signals_runs_every_strategy_ordered_by_ts_then_strategy():
    candles, ind = all_strategies_case()
    signals = generate_signals(candles, ind)
    assert list(signals.columns) == SIGNAL_COLUMNS
    assert list(zip(signals["ts"], signals["strategy"], strict=True)) == [
        (candles.index[2], "ema_channel_breakout"),
        (candles.index[2], "macd_cross_adx"),
        (candles.index[4], "rsi_mean_reversion"),
    ]
    assert signals["side"].tolist() == ["buy"] * 3
    assert signals["strength"].between(0, 1).all()


def test_the_open_candle_never_signals():
    candles, ind = all_strategies_case()
    closed = pd.Series([True, True, True, True, False], index=candles.index)
    signals = generate_signals(candles, ind, closed_mask=closed)
    assert "rsi_mean_reversion" not in set(signals["strategy"])
    assert len(signals) == 2


def test_a_bar_of_unknown_closedness_does_not_signal():
    candles, ind = all_strategies_case()
    closed = pd.Series([True, True, None, True, True], index=candles.index, dtype=object)
    assert generate_signals(candles, ind, closed_mask=closed)["strategy"].tolist() == ["rsi_mean_reversion"]


def test_a_closed_mask_on_another_index_is_refused():
    candles, ind = all_strategies_case()
    with pytest.raises(ValueError, match="closed_mask"):
        generate_signals(candles, ind, closed_mask=pd.Series([True] * 5))


def test_generate_signals_runs_only_the_named_strategies():
    candles, ind = all_strategies_case()
    assert generate_signals(candles, ind, names=["macd_cross_adx"])["strategy"].tolist() == ["macd_cross_adx"]


def test_an_unknown_strategy_name_is_refused():
    candles, ind = all_strategies_case()
    with pytest.raises(ValueError, match="no_such_rule"):
        generate_signals(candles, ind, names=["no_such_rule"])


def test_params_given_by_name_override_the_registry_defaults():
    candles, ind = all_strategies_case()
    signals = generate_signals(candles, ind, params={"macd_cross_adx": MacdCrossAdxParams(adx_min=35)})
    assert "macd_cross_adx" not in set(signals["strategy"])


def test_nothing_firing_gives_an_empty_table_with_the_columns():
    candles, ind = all_strategies_case()
    signals = generate_signals(candles, ind, closed_mask=pd.Series(False, index=candles.index))
    assert signals.empty
    assert list(signals.columns) == SIGNAL_COLUMNS


def test_indicators_on_a_different_index_are_refused():
    candles, ind = all_strategies_case()
    with pytest.raises(ValueError, match="index"):
        generate_signals(candles, ind.iloc[1:])


def test_the_registry_pairs_each_strategy_with_its_frozen_default_params():
    assert set(STRATEGIES) == {"ema_channel_breakout", "rsi_mean_reversion", "macd_cross_adx"}
    for rule, defaults in STRATEGIES.values():
        assert callable(rule)
        with pytest.raises(AttributeError):
            defaults.__setattr__(next(iter(defaults.__dataclass_fields__)), 0)
