"""Rolling mean and population standard deviation (the Bollinger moments), exact even in flat windows."""

from __future__ import annotations

import numpy as np

from services.indicators.smoothing import decay_recurrence

__all__ = ["SEGMENT", "rolling_mean_std", "window_mean_std"]

# Window ends per segment. Each segment restarts its running sums from a directly
# summed first window, taken around the segment's own first price, so rounding never
# accumulates over more than SEGMENT bars and never grows with how far the price
# has drifted since the start of the series.
SEGMENT = 256

# A running variance closer to zero than TRUST times its rounding bound is recomputed
# exactly from its window. Above it, the square root keeps the error below
# sqrt(bound / TRUST) / 2, about 1.6e-10 of the segment's price range; below it, only
# near-flat windows (a deviation under ~3e-4 of that range) pay the exact pass.
TRUST = 1e6

_EPSILON = float(np.finfo(np.float64).eps)


def window_mean_std(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, population std) of each window along the last axis, from its deviations.

    The deviations are taken from the window's last value r (x - r is exact for
    nearby prices), then centred on their own mean: a flat window gives exactly
    r and 0, and a tiny spread keeps its digits however high the price.
    """
    last = windows[..., -1:]
    deviation = windows - last
    centre = deviation.mean(axis=-1, keepdims=True)
    spread = np.sqrt(np.square(deviation - centre).mean(axis=-1))
    return (last + centre)[..., 0], spread


def rolling_mean_std(values: np.ndarray, window: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rolling mean and population standard deviation (ddof=0): out[0] mean, out[1] std.

    Running sums of the deviations and squared deviations around each segment's
    anchor a run as one recurrence over (rows x segments) short rows. Windows whose variance
    is within reach of its rounding bound (flat or nearly flat ones) are then
    recomputed exactly by window_mean_std. NaN before the first full window.
    `out` is a C-contiguous (2, rows, bars) array.
    """
    rows, bars = values.shape
    result = np.empty((2, rows, bars)) if out is None else out
    if not result.flags.c_contiguous:
        raise ValueError("rolling_mean_std writes both moments through one view: out must be C-contiguous")
    result[:, :, : window - 1] = np.nan
    if window > bars:
        return result
    ends = bars - window + 1
    segments = -(-ends // SEGMENT)
    first_ends = window - 1 + SEGMENT * np.arange(segments)
    anchor = values[:, first_ends]
    first_windows = values[:, first_ends[:, None] + np.arange(1 - window, 1)]  # (rows, segments, window)
    drives = _segment_drives(values, window, anchor, first_windows, segments * SEGMENT)
    moments = decay_recurrence(drives.reshape(-1, SEGMENT), 1.0, 1.0 / window, overwrite_drive=True)
    centred, variance = moments.reshape(2, rows, segments, SEGMENT)
    variance -= np.square(centred)
    bound = _rounding_bound(values, window, anchor, first_windows)
    suspect = variance < TRUST * bound[:, :, None]
    suspect.reshape(rows, -1)[:, ends:] = False  # the last segment's padding
    centred += anchor[:, :, None]
    mean, deviation = result[0][:, window - 1 :], result[1][:, window - 1 :]
    mean[...] = centred.reshape(rows, -1)[:, :ends]
    if suspect.any():
        # Rare in live prices, common in a market that stops trading: exact, from the window.
        row, end = np.nonzero(suspect.reshape(rows, -1))
        exact_mean, exact_deviation = window_mean_std(values[row[:, None], end[:, None] + np.arange(window)])
        variance.reshape(rows, -1)[row, end] = 0.0  # its square root is replaced below
        mean[row, end] = exact_mean
    np.sqrt(variance.reshape(rows, -1)[:, :ends], out=deviation)
    if suspect.any():
        deviation[row, end] = exact_deviation
    return result


def _segment_drives(
    values: np.ndarray, window: int, anchor: np.ndarray, first_windows: np.ndarray, padded: int
) -> np.ndarray:
    """(2, rows, padded) drives: each segment's first window totals, then window-to-window changes.

    With e = x_t - a and c = x_t - x_{t-w} (both exact for nearby prices), the
    squared deviations change by (2e - c) * c: never a sum of two raw prices,
    which would round at the price's scale instead of the deviation's.
    """
    rows = values.shape[0]
    ends = values.shape[1] - window + 1
    drives = np.empty((2, rows, padded))
    drives[1][:, 0] = drives[1][:, ends:] = 0.0  # never computed below, but shifted by the anchor
    mean_change, square_change = drives[0][:, 1:ends], drives[1][:, 1:ends]
    np.subtract(values[:, window:], values[:, :-window], out=mean_change)
    square_change[...] = values[:, window:]
    drives[1].reshape(rows, -1, SEGMENT)[...] -= anchor[:, :, None]
    np.add(square_change, square_change, out=square_change)
    square_change -= mean_change
    square_change *= mean_change
    deviation = first_windows - anchor[:, :, None]
    drives[0][:, ::SEGMENT] = deviation.sum(axis=-1)
    drives[1][:, ::SEGMENT] = np.square(deviation).sum(axis=-1)
    drives[:, :, ends:] = 0.0
    return drives


def _rounding_bound(values: np.ndarray, window: int, anchor: np.ndarray, first_windows: np.ndarray) -> np.ndarray:
    """(rows, segments): what rounding may have added to a segment's running variance.

    With D the largest distance from the anchor of any price the segment's windows
    read, every change is at most 4 D^2 / window (rounded a few times) and every
    running value at most D^2; up to SEGMENT of them accumulate, plus the first
    window's sum and the final subtraction of the squared mean.
    """
    rows = values.shape[0]
    segments = anchor.shape[1]
    end_prices = values[:, window - 1 :]
    full = (segments - 1) * SEGMENT
    high = np.empty((rows, segments))
    low = np.empty((rows, segments))
    if full:
        blocks = end_prices[:, :full].reshape(rows, -1, SEGMENT)
        blocks.max(axis=-1, out=high[:, :-1])
        blocks.min(axis=-1, out=low[:, :-1])
    high[:, -1], low[:, -1] = end_prices[:, full:].max(axis=-1), end_prices[:, full:].min(axis=-1)
    np.maximum(high, first_windows.max(axis=-1), out=high)
    np.minimum(low, first_windows.min(axis=-1), out=low)
    reach = np.maximum(high - anchor, anchor - low)
    return _EPSILON * (SEGMENT * (1.0 + 16.0 / window) + 8.0) * np.square(reach)
