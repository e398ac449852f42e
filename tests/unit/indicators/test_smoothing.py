"""The blocked recurrence and rolling windows agree with the plain bar-by-bar definitions."""

import numpy as np
import pandas as pd
import pytest

from services.indicators.smoothing import decay_recurrence, rolling_mean, seeded_smoothing
from services.indicators.windows import rolling_mean_std


def bar_by_bar(drive: np.ndarray, decay: float, scale: float, initial: np.ndarray) -> np.ndarray:
    """y[t] = decay * y[t-1] + scale * drive[t], the definition, one bar at a time."""
    result = np.empty_like(drive)
    state = np.array(initial, dtype=float)
    for t in range(drive.shape[1]):
        state = decay * state + scale * drive[:, t]
        result[:, t] = state
    return result


@pytest.mark.parametrize("bars", [1, 7, 8, 9, 64, 1_000, 20_001, 70_001])
@pytest.mark.parametrize("decay", [0.0, 0.5, 1.0 - 1.0 / 14, 1.0 - 2.0 / 201, 1.0])
def test_decay_recurrence_equals_the_bar_by_bar_definition(bars, decay):
    rng = np.random.default_rng(bars)
    drive = rng.normal(size=(3, bars))
    initial = rng.normal(size=3)
    expected = bar_by_bar(drive, decay, 0.25, initial)
    actual = decay_recurrence(drive, decay, 0.25, initial)
    scale = np.abs(expected).max() + 1.0
    assert np.abs(actual - expected).max() <= 1e-12 * scale


def test_decay_recurrence_leaves_its_drive_alone_unless_told():
    drive = np.arange(40.0).reshape(2, 20)
    before = drive.copy()
    decay_recurrence(drive, 0.9)
    np.testing.assert_array_equal(drive, before)


def test_decay_recurrence_accepts_strided_views_in_and_out():
    rng = np.random.default_rng(1)
    drive = rng.normal(size=(4, 101))
    out = np.full((4, 101), np.nan)
    decay_recurrence(drive[:, 5:], 0.8, 0.2, 1.5, out=out[:, 5:])
    expected = bar_by_bar(drive[:, 5:], 0.8, 0.2, np.full(4, 1.5))
    assert np.abs(out[:, 5:] - expected).max() < 1e-12
    assert np.isnan(out[:, :5]).all()


def test_overwriting_the_drive_gives_the_same_result():
    rng = np.random.default_rng(2)
    drive = rng.normal(size=(2, 333))
    expected = decay_recurrence(drive, 0.95, 0.05, 2.0)
    overwritten = decay_recurrence(drive.copy(), 0.95, 0.05, 2.0, overwrite_drive=True)
    np.testing.assert_allclose(overwritten, expected, rtol=1e-14)


def test_seeded_smoothing_is_nan_before_its_seed_and_then_the_ewm_recurrence():
    values = np.random.default_rng(3).normal(100.0, 1.0, size=(1, 500))
    smoothed = seeded_smoothing(values, 19, np.array([42.0]), 0.1)
    assert np.isnan(smoothed[0, :19]).all() and smoothed[0, 19] == 42.0
    series = pd.Series(np.concatenate(([42.0], values[0, 20:])))
    np.testing.assert_allclose(smoothed[0, 19:], series.ewm(alpha=0.1, adjust=False).mean(), rtol=1e-13)


@pytest.mark.parametrize("window", [2, 20, 50])
def test_rolling_mean_matches_pandas(window):
    values = 100.0 + np.random.default_rng(window).normal(size=(2, 5_000)).cumsum(axis=1)
    expected = pd.DataFrame(values.T).rolling(window).mean().to_numpy().T
    actual = rolling_mean(values, window)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    assert np.nanmax(np.abs(actual - expected)) <= 1e-12 * np.abs(values).max()


def test_rolling_std_keeps_its_digits_when_tiny_next_to_the_price():
    # A price near 50,000 moving by 1e-3: the variance is 1e-15 of the squared level.
    rng = np.random.default_rng(5)
    values = (50_000.0 + rng.normal(0.0, 1e-3, size=20_000))[None, :]
    mean, std = rolling_mean_std(values, 20)
    exact = pd.Series(values[0]).rolling(20).apply(lambda w: np.std(w - w.mean()), raw=True).to_numpy()
    assert np.nanmax(np.abs(std[0] - exact)) < 1e-9 * np.nanmax(exact)
    np.testing.assert_allclose(mean[0, 19:], pd.Series(values[0]).rolling(20).mean()[19:], rtol=1e-15)


def test_rolling_windows_longer_than_the_series_are_all_nan():
    values = np.ones((1, 10))
    assert np.isnan(rolling_mean(values, 20)).all()
    assert np.isnan(rolling_mean_std(values, 20)).all()


def test_a_flat_window_has_zero_deviation_not_a_negative_rounding():
    values = np.full((1, 200), 0.1 + 0.2)
    _, std = rolling_mean_std(values, 20)
    assert (std[0, 19:] == 0.0).all()

