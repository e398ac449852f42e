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
# sqrt(bound / TRUST) / 2, under 1e-9 of the segment's price range; below it, only
# near-flat windows (a deviation under ~1e-3 of that range) pay the exact pass.
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
    anchor a run as one recurrence over (rows x segments) short rows. Windows whose
    variance is within reach of its rounding bound (flat or nearly flat ones) are
    then recomputed exactly by window_mean_std. NaN before the first full window.
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
    # Before the squared mean comes off, `variance` is the mean square around the anchor.
    largest_square = variance.max(axis=-1)
    variance -= np.square(centred, out=drives[0].reshape(centred.shape))  # the spent drives as scratch
    variance.reshape(rows, -1)[:, ends:] = np.inf  # the last segment's padding is never suspect
    suspect = _suspect_windows(variance, largest_square, window)
    mean, deviation = result[0][:, window - 1 :], result[1][:, window - 1 :]
    _add_anchors(centred, anchor, mean)
    if suspect is not None:
        variance.reshape(rows, -1)[suspect] = 0.0  # may have rounded below zero; replaced below
    np.sqrt(variance.reshape(rows, -1)[:, :ends], out=deviation)
    if suspect is not None:
        # Rare in live prices, common in a market that stops trading: exact, from the window.
        row, end = suspect
        mean[suspect], deviation[suspect] = window_mean_std(values[row[:, None], end[:, None] + np.arange(window)])
    return result


def _segment_drives(
    values: np.ndarray, window: int, anchor: np.ndarray, first_windows: np.ndarray, padded: int
) -> np.ndarray:
    """(2, rows, padded) drives: each segment's first window totals, then window-to-window changes.

    With e = x_t - a and c = x_t - x_{t-w} (both exact for nearby prices), the
    squared deviations change by (2e - c) * c: never a sum of two raw prices,
    which would round at the price's scale instead of the deviation's.
    """
    rows, bars = values.shape
    ends = bars - window + 1
    drives = np.empty((2, rows, padded))
    mean_change, square_change = drives[0][:, 1:ends], drives[1][:, 1:ends]
    np.subtract(values[:, window:], values[:, :-window], out=mean_change)
    _per_segment(np.subtract, values[:, window - 1 :], anchor, drives[1][:, :ends])  # e, 0 at each anchor
    np.add(square_change, square_change, out=square_change)
    square_change -= mean_change
    square_change *= mean_change
    first_deviation = first_windows - anchor[:, :, None]
    drives[0][:, ::SEGMENT] = first_deviation.sum(axis=-1)
    drives[1][:, ::SEGMENT] = np.square(first_deviation).sum(axis=-1)
    drives[:, :, ends:] = 0.0
    return drives


def _per_segment(operation: np.ufunc, values: np.ndarray, per_segment: np.ndarray, out: np.ndarray) -> None:
    """out = operation(values, the value of each one's segment), for (rows, ends) values and out."""
    rows, ends = values.shape
    full = ends // SEGMENT
    if full:
        target = out[:, : full * SEGMENT].view()
        target.shape = (rows, full, SEGMENT)  # raises rather than silently writing into a copy
        operation(values[:, : full * SEGMENT].reshape(rows, full, SEGMENT), per_segment[:, :full, None], out=target)
    if ends > full * SEGMENT:
        operation(values[:, full * SEGMENT :], per_segment[:, full : full + 1], out=out[:, full * SEGMENT :])


def _add_anchors(centred: np.ndarray, anchor: np.ndarray, mean: np.ndarray) -> None:
    """mean = centred mean + its segment's anchor, written straight into the (rows, ends) output."""
    rows, ends = mean.shape
    _per_segment(np.add, centred.reshape(rows, -1)[:, :ends], anchor, mean)


def _suspect_windows(
    variance: np.ndarray, largest_square: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(row, window end) of every variance below TRUST times its segment's rounding bound; None if none.

    With D the largest distance from the anchor of any price a segment's windows
    read, every change is at most 4 D^2 / window (rounded a few times) and every
    running value at most D^2; up to SEGMENT of them accumulate, plus the first
    window's sum and the final subtraction of the squared mean. D^2 is at most
    window times the segment's largest mean square around the anchor (the window
    holding that price has at least D^2 / window), which the recurrence just gave.
    The minimum per segment is read first, so the common case writes no mask at all.
    """
    reach_squared = window * largest_square
    threshold = TRUST * _EPSILON * (SEGMENT * (1.0 + 16.0 / window) + 8.0) * reach_squared
    flagged = np.nonzero(variance.min(axis=-1) < threshold)
    if not len(flagged[0]):
        return None
    rows, segments = flagged
    inside = variance[rows, segments] < threshold[rows, segments, None]
    which, offset = np.nonzero(inside)
    return rows[which], segments[which] * SEGMENT + offset
