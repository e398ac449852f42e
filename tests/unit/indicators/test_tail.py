"""Recomputing only a tail window gives the full-history values: the hourly O(new bars) path."""

import numpy as np
import pandas as pd
import pytest

from services.indicators.engine import (
    INDICATOR_COLUMNS,
    IndicatorParams,
    compute_indicators,
    compute_tail,
    compute_tail_batch,
    warmup_bars,
)
from tests.utils.series import realistic_candles

PERCENT_COLUMNS = {"rsi", "adx", "plus_di", "minus_di"}
BARS = 20_000


@pytest.fixture(scope="module")
def candles():
    return realistic_candles(bars=BARS, seed=3)


@pytest.fixture(scope="module")
def full_history(candles):
    return compute_indicators(candles, IndicatorParams())


def assert_frames_match(actual: pd.DataFrame, expected: pd.DataFrame, price_scale: float, tolerance: float) -> None:
    """Same index, columns and regimes; floats within `tolerance` of each column's scale, NaN where NaN."""
    assert actual.index.equals(expected.index)
    assert list(actual.columns) == list(expected.columns)
    for column in INDICATOR_COLUMNS:
        scale = 100.0 if column in PERCENT_COLUMNS else price_scale
        a, b = actual[column].to_numpy(), expected[column].to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=column)
        assert np.nanmax(np.abs(a - b), initial=0.0) <= tolerance * scale, column
    assert actual["regime"].tolist() == expected["regime"].tolist()


@pytest.mark.parametrize("position", [0, 150, 2_963, 2_964, 2_965, 7_777, 15_001, BARS - 1])
def test_tail_from_any_bar_equals_the_full_history(candles, full_history, position):
    since = candles.index[position]
    tail = compute_tail(candles, IndicatorParams(), since)
    assert len(tail) == BARS - position
    assert_frames_match(tail, full_history.iloc[position:], candles["close"].abs().max(), 1e-9)


def test_tail_reads_only_the_warmup_bars_before_since(candles, full_history):
    position = 10_000
    history = candles.iloc[position - warmup_bars(IndicatorParams()) :]
    tail = compute_tail(history, IndicatorParams(), candles.index[position])
    assert_frames_match(tail, full_history.iloc[position:], candles["close"].abs().max(), 1e-9)


def test_tail_with_custom_periods_still_equals_the_full_history(candles):
    params = IndicatorParams(rsi=9, ema_trend=100, adx=20, atr=10, bb_period=30, bb_k=2.5, channel=21, macd_signal=5)
    position = 12_000
    tail = compute_tail(candles, params, candles.index[position])
    expected = compute_indicators(candles, params).iloc[position:]
    assert_frames_match(tail, expected, candles["close"].abs().max(), 1e-9)


def test_since_between_bars_starts_at_the_next_bar(candles, full_history):
    since = candles.index[5_000] + pd.Timedelta(minutes=30)
    tail = compute_tail(candles, IndicatorParams(), since)
    assert tail.index[0] == candles.index[5_001]


def test_since_after_the_last_bar_gives_an_empty_frame_with_every_column(candles):
    tail = compute_tail(candles, IndicatorParams(), candles.index[-1] + pd.Timedelta(hours=1))
    assert tail.empty
    assert list(tail.columns) == [*INDICATOR_COLUMNS, "regime"]


def test_naive_since_is_refused(candles):
    with pytest.raises(ValueError, match="since_ts"):
        compute_tail(candles, IndicatorParams(), pd.Timestamp("2021-01-01"))


def test_warmup_is_long_enough_for_the_slowest_ema_to_forget_its_seed():
    params = IndicatorParams()
    alpha = 2.0 / (params.ema_trend + 1)
    # (1 - alpha)**n below 1e-9 of the price scale, with room to spare.
    assert (1.0 - alpha) ** (warmup_bars(params) - params.ema_trend) < 1e-9


@pytest.mark.parametrize(
    "override",
    [{"ema_trend": 400}, {"rsi": 200}, {"adx": 150}, {"macd_slow": 300}, {"channel": 500}, {"atr": 300}],
)
def test_warmup_grows_with_the_periods_that_drive_it(override):
    assert warmup_bars(IndicatorParams.from_mapping(override)) > warmup_bars(IndicatorParams())


def test_batch_of_instruments_equals_computing_each_tail_alone():
    params = IndicatorParams()
    history = {
        f"coin-{n}": realistic_candles(bars=4_000 + 7 * n, seed=100 + n, price=10.0 * (n + 1)) for n in range(12)
    }
    # Mostly one new bar each, as in the hourly update; some with several, one with none.
    since = {key: frame.index[-1 - (n % 3)] for n, (key, frame) in enumerate(history.items())}
    since["coin-11"] = history["coin-11"].index[-1] + pd.Timedelta(hours=1)
    batch = compute_tail_batch(history, params, since)
    assert list(batch) == list(history)
    for key, frame in history.items():
        alone = compute_tail(frame, params, since[key])
        assert_frames_match(batch[key], alone, frame["close"].abs().max(), 1e-12)


def test_batch_with_short_histories_equals_computing_each_alone():
    params = IndicatorParams()
    history = {n: realistic_candles(bars=bars, seed=n) for n, bars in enumerate([20, 60, 60, 500, 3_500])}
    since = {n: frame.index[len(frame) // 2] for n, frame in history.items()}
    batch = compute_tail_batch(history, params, since)
    for key, frame in history.items():
        assert_frames_match(batch[key], compute_tail(frame, params, since[key]), frame["close"].abs().max(), 1e-12)


def test_batch_refuses_an_instrument_without_a_since_timestamp():
    history = {"a": realistic_candles(bars=100), "b": realistic_candles(bars=100)}
    with pytest.raises(ValueError, match="'b'"):
        compute_tail_batch(history, IndicatorParams(), {"a": history["a"].index[-1]})


def test_batch_frames_keep_a_utc_ts_index_even_across_mixed_resolutions():
    coarse, fine = realistic_candles(bars=3_000, seed=1), realistic_candles(bars=3_000, seed=2)
    fine.index = fine.index.as_unit("ns")
    history = {"coarse": coarse, "fine": fine}
    since = {"coarse": coarse.index[-2], "fine": fine.index[-1]}
    batch = compute_tail_batch(history, IndicatorParams(), since)
    for key, frame in history.items():
        assert batch[key].index.name == "ts" and str(batch[key].index.tz) == "UTC"
        assert list(batch[key].index) == list(frame.index[frame.index >= since[key]])
