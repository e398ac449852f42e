"""The Bollinger moments keep every digit: across segments, far from the first price, and in flat windows."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from services.indicators.windows import SEGMENT, rolling_mean_std, window_mean_std


def exact_moments(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of every full window, two-pass in extended precision."""
    windows = sliding_window_view(values.astype(np.longdouble), window)
    mean = windows.mean(axis=-1)
    std = np.sqrt(np.square(windows - mean[..., None]).mean(axis=-1))
    return mean.astype(float), std.astype(float)


def worst_errors(values: np.ndarray, window: int = 20) -> tuple[float, float]:
    """(worst mean error, worst std error) of rolling_mean_std, as fractions of the largest price."""
    mean, std = rolling_mean_std(values[None, :], window)[:, 0, window - 1 :]
    exact_mean, exact_std = exact_moments(values, window)
    scale = np.abs(values).max()
    return np.abs(mean - exact_mean).max() / scale, np.abs(std - exact_std).max() / scale


@pytest.mark.parametrize(
    "name",
    ["a ramp then flat", "a ramp then a tiny wobble", "a long drifting walk", "steps"],
)
def test_rolling_moments_equal_the_two_pass_answer_to_1e13_of_the_price(name):
    rng = np.random.default_rng(5)
    ramp = np.linspace(50.0, 100.0, 3_000)
    values = {
        "a ramp then flat": np.concatenate((ramp, np.full(100, 100.0))),
        "a ramp then a tiny wobble": np.concatenate((ramp, 100.0 + 1e-6 * rng.standard_normal(100))),
        "a long drifting walk": 100.0 * np.exp(np.cumsum(0.002 * rng.standard_normal(200_000))),
        "steps": np.repeat(100.0 + rng.standard_normal(300).cumsum(), 37),
    }[name]
    mean_error, std_error = worst_errors(values)
    assert mean_error <= 1e-15 and std_error <= 1e-13


def test_a_flat_window_after_a_ramp_has_exactly_zero_deviation_and_the_price_as_mean():
    values = np.concatenate((np.linspace(50.0, 100.0, 3_000), np.full(100, 100.0 + 1.0 / 3.0)))
    mean, std = rolling_mean_std(values[None, :], 20)[:, 0, -81:]
    assert (std == 0.0).all() and (mean == 100.0 + 1.0 / 3.0).all()


@pytest.mark.parametrize("bars", [20, 21, SEGMENT + 18, SEGMENT + 19, SEGMENT + 20, 5 * SEGMENT + 7])
def test_series_ending_on_either_side_of_a_segment_boundary_are_exact(bars):
    values = 30_000.0 + np.random.default_rng(bars).normal(0.0, 5.0, size=bars).cumsum()
    mean_error, std_error = worst_errors(values)
    assert mean_error <= 1e-15 and std_error <= 1e-15


def test_many_rows_at_once_equal_each_row_alone():
    values = 100.0 + np.random.default_rng(8).normal(size=(5, 2_000)).cumsum(axis=1)
    values[3, 500:700] = values[3, 500]  # one row with a flat stretch
    together = rolling_mean_std(values, 20)
    for row in range(5):
        alone = rolling_mean_std(values[row : row + 1], 20)[:, 0]
        np.testing.assert_array_equal(np.isnan(together[:, row]), np.isnan(alone))
        # Stacked rows may take another BLAS kernel: equal to rounding, not to the bit.
        assert np.nanmax(np.abs(together[:, row] - alone)) <= 1e-14 * np.abs(values).max()
    assert (together[1, 3, 519:700] == 0.0).all()


def test_the_moments_are_nan_until_the_first_window_is_full():
    mean, std = rolling_mean_std(np.arange(1.0, 31.0)[None, :], 20)[:, 0]
    assert np.isnan(mean[:19]).all() and np.isnan(std[:19]).all() and mean[19] == 10.5


def test_a_strided_output_is_refused():
    with pytest.raises(ValueError, match="C-contiguous"):
        rolling_mean_std(np.ones((1, 50)), 20, out=np.empty((2, 1, 100))[:, :, ::2])


def test_window_mean_std_is_exact_on_a_flat_window_at_any_price():
    windows = np.full((3, 20), [[0.1 + 0.2], [50_000.123], [1e-7]])
    mean, std = window_mean_std(windows)
    np.testing.assert_array_equal(mean, windows[:, 0])
    np.testing.assert_array_equal(std, 0.0)
