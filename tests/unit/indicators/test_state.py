"""A recursion state taken at the end of a history and carried over new bars gives the full-history values."""

import numpy as np
import pandas as pd
import pytest

from services.indicators.engine import INDICATOR_COLUMNS, IndicatorParams, compute_indicators
from services.indicators.incremental import advance_state, advance_states, build_state
from services.indicators.state import (
    SCALARS,
    IndicatorState,
    first_state_bar,
    params_fingerprint,
    state_width,
)
from tests.utils.series import candles_from_closes, realistic_candles

PERCENT_COLUMNS = {"rsi", "adx", "plus_di", "minus_di"}
BARS = 6_000
START = 5_000  # the state is taken at bar START - 1, then carried


@pytest.fixture(scope="module")
def candles():
    return realistic_candles(bars=BARS, seed=21)


@pytest.fixture(scope="module")
def full_history(candles):
    return compute_indicators(candles, IndicatorParams())


def assert_values_match(actual: pd.DataFrame, expected: pd.DataFrame, price_scale: float, tolerance: float) -> None:
    """Same bars and regimes; every float within `tolerance` of its column's scale."""
    assert actual.index.equals(expected.index)
    for column in INDICATOR_COLUMNS:
        scale = 100.0 if column in PERCENT_COLUMNS else price_scale
        difference = np.abs(actual[column].to_numpy() - expected[column].to_numpy())
        assert difference.max(initial=0.0) <= tolerance * scale, column
    assert actual["regime"].tolist() == expected["regime"].tolist()


def carried(state: IndicatorState, candles: pd.DataFrame, chunk: int, params=IndicatorParams()) -> pd.DataFrame:
    """Advance `state` over `candles`, `chunk` bars at a time; all the frames, joined."""
    frames = []
    for first in range(0, len(candles), chunk):
        frame, state = advance_state(state, candles.iloc[first : first + chunk], params)
        frames.append(frame)
    return pd.concat(frames)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1_000])
def test_a_state_carried_over_a_thousand_bars_in_any_chunks_equals_the_full_history(candles, full_history, chunk):
    state = build_state(candles.iloc[:START])
    ours = carried(state, candles.iloc[START:], chunk)
    assert_values_match(ours, full_history.iloc[START:], candles["close"].abs().max(), 1e-12)


def test_custom_periods_are_carried_too(candles):
    # sma_fast differs from the Bollinger period and atr from adx: nothing is shared.
    params = IndicatorParams(rsi=9, sma_fast=10, ema_trend=100, adx=20, atr=10, bb_period=30, bb_k=2.5, channel=21,
                             macd_signal=5)
    state = build_state(candles.iloc[:START], params)
    ours = carried(state, candles.iloc[START:], 13, params)
    expected = compute_indicators(candles, params).iloc[START:]
    assert_values_match(ours, expected, candles["close"].abs().max(), 1e-12)


def test_the_state_is_taken_at_the_last_closed_bar(candles):
    history = candles.iloc[:START].assign(is_closed=True)
    history.iloc[-1, history.columns.get_loc("is_closed")] = False
    assert build_state(history).last_ts == candles.index[START - 2]
    assert build_state(candles.iloc[:START]).last_ts == candles.index[START - 1]


def test_the_open_bar_is_computed_from_the_state_without_moving_it(candles, full_history):
    state = build_state(candles.iloc[:START])
    bars = candles.iloc[START : START + 3].assign(is_closed=[True, True, False])
    frame, following = advance_state(state, bars)
    assert following.last_ts == candles.index[START + 1]
    assert_values_match(frame, full_history.iloc[START : START + 3], candles["close"].abs().max(), 1e-12)
    # The open bar again, with other prices: computed from the same state, which stays put.
    moved = bars.iloc[2:].assign(close=bars["close"].iloc[2] * 1.01)
    again, kept = advance_state(following, moved)
    assert kept is following
    np.testing.assert_array_equal(kept.vector, following.vector)
    assert again["ema_fast"].iloc[0] != frame["ema_fast"].iloc[2]


def test_advancing_over_no_bars_keeps_the_state(candles):
    state = build_state(candles.iloc[:START])
    frame, following = advance_state(state, candles.iloc[:0])
    assert frame.empty and list(frame.columns) == [*INDICATOR_COLUMNS, "regime"]
    assert following is state


def test_a_history_too_short_to_seed_every_recurrence_has_no_state():
    params = IndicatorParams()
    short = realistic_candles(bars=first_state_bar(params))
    assert build_state(short, params) is None
    assert build_state(realistic_candles(bars=first_state_bar(params) + 1), params) is not None
    assert build_state(short.assign(is_closed=False), params) is None


def test_the_vector_holds_every_scalar_then_the_longest_window_of_closes():
    params = IndicatorParams()
    state = build_state(realistic_candles(bars=500), params)
    assert len(state.vector) == state_width(params) == len(SCALARS) + params.sma_slow
    assert state.vector[-1] == realistic_candles(bars=500)["close"].iloc[-1]


def test_a_batch_of_instruments_equals_carrying_each_state_alone():
    params = IndicatorParams()
    histories = {n: realistic_candles(bars=3_000 + 11 * n, seed=40 + n, price=5.0 * (n + 1)) for n in range(9)}
    # Different shapes side by side: closed bars only, closed then open, open only, none.
    new_bars = {n: 3 - n % 4 for n in histories}
    states = {n: build_state(frame.iloc[: len(frame) - 3], params) for n, frame in histories.items()}
    pieces = []
    for n, frame in histories.items():
        bars = frame.iloc[len(frame) - 3 : len(frame) - 3 + new_bars[n]].assign(instrument_id=n, is_closed=True)
        if n % 2:
            bars.iloc[-1:, bars.columns.get_loc("is_closed")] = False
        pieces.append(bars)
    candles = pd.concat(pieces)
    frame, following = advance_states(states, candles, params)
    for n, piece in zip(histories, pieces, strict=True):
        alone, state = advance_state(states[n], piece.drop(columns="instrument_id"), params)
        mine = frame[candles["instrument_id"].to_numpy() == n]
        scale = histories[n]["close"].max()
        assert_values_match(mine, alone, scale, 1e-14)
        assert np.abs(following[n].vector - state.vector).max() <= 1e-14 * scale
        assert following[n].last_ts == state.last_ts


def test_a_flat_market_carries_bands_of_zero_width_exactly():
    closes = np.concatenate((np.linspace(50.0, 100.0, 3_000), np.full(100, 100.0)))
    candles = candles_from_closes(closes, wick=0.0)
    frame, _ = advance_state(build_state(candles.iloc[:3_050]), candles.iloc[3_050:])
    assert (frame["bb_upper"] == 100.0).all() and (frame["bb_lower"] == 100.0).all()
    assert (frame["bb_middle"] == 100.0).all()


def test_the_fingerprint_is_stable_and_changes_with_any_param():
    assert params_fingerprint(IndicatorParams()) == params_fingerprint(IndicatorParams.from_mapping({}))
    changed = [IndicatorParams(rsi=15), IndicatorParams(bb_k=2.5), IndicatorParams(regime_adx_min=20.0)]
    assert len({params_fingerprint(params) for params in [IndicatorParams(), *changed]}) == 4


NEW_BARS = slice(START, START + 3)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda state, candles: (state, candles.iloc[START - 1 : START + 2]), "do not follow"),
        (lambda state, candles: (IndicatorState(state.last_ts, "0" * 32, state.vector), candles.iloc[NEW_BARS]),
         "other params"),
        (lambda state, candles: (state, candles.iloc[NEW_BARS].assign(close=np.nan)), "NaN"),
        (lambda state, candles: (state, candles.iloc[NEW_BARS].iloc[::-1]), "ascending"),
    ],
    ids=["bars from the state's own bar", "another fingerprint", "a NaN close", "bars out of order"],
)
def test_a_state_refuses_bars_it_cannot_be_carried_over(candles, mutate, message):
    state, bars = mutate(build_state(candles.iloc[:START]), candles)
    with pytest.raises(ValueError, match=message):
        advance_state(state, bars)


def test_bars_of_an_instrument_without_a_state_are_refused(candles):
    bars = candles.iloc[START : START + 2].assign(instrument_id=[1, 2])
    with pytest.raises(ValueError, match="no state"):
        advance_states({1: build_state(candles.iloc[:START])}, bars)
