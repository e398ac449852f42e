"""Exact, vectorised linear recurrences and rolling sums that every indicator is built from."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "BLOCK",
    "decay_recurrence",
    "rolling_mean",
    "seeded_smoothing",
]

# Arrays are (instruments, bars): time runs along the last, contiguous axis, so one
# instrument is simply a single row and a batch of instruments is many rows.

# Bars per block. A (blocks x 8) @ (8 x 8) product runs at memory speed in BLAS,
# which is what makes a recurrence cost a few passes over the data, not a Python loop.
BLOCK = 8

# Elements solved together in the final pass, so that its copy, injection and
# product stay in cache (512 KB).
CHUNK = 1 << 16

# Block-end recurrences this short are solved with one triangular matrix product
# (at most 128 x 128, cached per decay; bigger ones recurse, which reads far less memory).
DENSE = 128

# A carry scaled by less than this changes no float64 state by more than 2**-60 of
# itself, far below the 1e-9 the engine promises, so it may be dropped.
NEGLIGIBLE = 2.0**-60


@lru_cache(maxsize=64)
def _decay_matrix(decay: float, size: int, scale: float = 1.0) -> np.ndarray:
    """The size x size matrix M with M[i, j] = scale * decay**(j - i) for j >= i, else 0.

    A row of drives times M is the zero-state response to those drives; the
    upper-left n x n corner is the same matrix for n bars.
    """
    lag = np.arange(size)[None, :] - np.arange(size)[:, None]
    matrix = np.where(lag >= 0, scale * np.power(decay, np.maximum(lag, 0).astype(float)), 0.0)
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=16)
def _dense_decay_matrix(decay: float) -> np.ndarray:
    """_decay_matrix(decay, DENSE): the largest triangular product, sliced for smaller ones."""
    return _decay_matrix.__wrapped__(decay, DENSE)


def decay_recurrence(
    drive: np.ndarray,
    decay: float,
    scale: float = 1.0,
    initial: np.ndarray | float = 0.0,
    out: np.ndarray | None = None,
    overwrite_drive: bool = False,
) -> np.ndarray:
    """Solve y[:, t] = decay * y[:, t-1] + scale * drive[:, t] with y[:, -1] = initial.

    `drive` is a float64 (rows, bars) array (a strided view is fine); it is left
    alone unless `overwrite_drive` says the caller no longer needs it, which saves
    a copy. `out` must not overlap `drive`.

    Within each block of BLOCK bars the zero-state response is one matrix product;
    the state entering each block is the same recurrence over block ends (with
    decay**BLOCK), solved the same way, so the result is exact to rounding (every
    weight is in [0, 1]) and costs a few passes over the data, not a loop per bar.
    """
    rows, bars = drive.shape
    result = np.empty((rows, bars)) if out is None else out
    if rows == 0 or bars == 0:
        return result
    entering = np.zeros(rows) + initial
    whole = bars - bars % BLOCK
    blocks = drive[:, :whole].reshape(rows, -1, BLOCK)  # a view: only the last axis must be contiguous
    response = _decay_matrix(decay, BLOCK, scale)
    zero_state_ends = blocks @ response[:, -1]
    if whole < bars:
        # The last few bars (less than a block) ride along as one zero-padded block.
        last = np.zeros((rows, BLOCK))
        last[:, : bars - whole] = drive[:, whole:]
        zero_state_ends = np.concatenate((zero_state_ends, last @ response[:, -1:]), axis=1)
    block_ends = _block_end_states(zero_state_ends, decay**BLOCK, entering)
    # Adding the state that enters a block to the block's first drive (undoing the
    # scale the product applies) lets one product produce the complete solution.
    carried = np.concatenate((entering[:, None], block_ends[:, :-1]), axis=1)
    carried *= decay / scale
    for band, span in _cache_sized_chunks(rows, blocks.shape[1]):
        # Copy (unless the drive is ours to change), inject and multiply while the
        # chunk is in cache: main memory sees one read of the drive and one write.
        work = blocks[band, span] if overwrite_drive else blocks[band, span].copy()
        work[:, :, 0] += carried[band, span]
        target = result[band, span.start * BLOCK : span.stop * BLOCK]
        if work.flags.c_contiguous and target.flags.c_contiguous:
            np.matmul(work.reshape(-1, BLOCK), response, out=target.reshape(-1, BLOCK))
        else:
            np.matmul(work, response, out=target.reshape(work.shape))
    if whole < bars:
        last[:, 0] += carried[:, -1]
        result[:, whole:] = (last @ response)[:, : bars - whole]
    return result


def _cache_sized_chunks(rows: int, blocks: int) -> list[tuple[slice, slice]]:
    """(row band, block span) pairs covering a (rows, blocks) grid in about CHUNK elements each.

    Whole rows are kept together when they fit, so a band stays one contiguous
    matrix product; a long single row is cut along time instead.
    """
    per_row = blocks * BLOCK
    if per_row == 0:
        return []
    if per_row >= CHUNK:
        span = max(1, CHUNK // BLOCK)
        return [
            (slice(row, row + 1), slice(first, min(first + span, blocks)))
            for row in range(rows)
            for first in range(0, blocks, span)
        ]
    band = max(1, CHUNK // per_row)
    return [(slice(first, first + band), slice(0, blocks)) for first in range(0, rows, band)]


def _block_end_states(ends: np.ndarray, block_decay: float, entering: np.ndarray) -> np.ndarray:
    """True state at each block end from each block's zero-state end: Y[b] = D*Y[b-1] + ends[b]."""
    blocks = ends.shape[1]
    if block_decay < NEGLIGIBLE:
        # The state two blocks back is scaled by block_decay**2 < 2**-120: gone.
        states = ends.copy()
        states[:, 0] += block_decay * entering
        states[:, 1:] += block_decay * ends[:, :-1]
        return states
    if blocks <= DENSE:
        # One triangular product; the entering state decays over the blocks like
        # a drive of `block_decay * entering` on the first of them.
        ends[:, 0] += block_decay * entering
        return ends @ _dense_decay_matrix(block_decay)[:blocks, :blocks]
    return decay_recurrence(ends, block_decay, initial=entering, overwrite_drive=True)


def seeded_smoothing(
    values: np.ndarray,
    start: int,
    seed: np.ndarray | float,
    alpha: float,
    out: np.ndarray | None = None,
    overwrite_values: bool = False,
) -> np.ndarray:
    """Exponential smoothing that starts from `seed` at bar `start`.

    y[start] = seed and y[t] = (1 - alpha) * y[t-1] + alpha * values[t] after it;
    NaN before `start` (the warm-up). This is TA-Lib's EMA (alpha = 2/(N+1)) and
    Wilder's smoothing (alpha = 1/N); only the seed differs between indicators.
    `overwrite_values`: the caller no longer needs `values` (saves a copy).
    """
    rows, bars = values.shape
    result = np.empty((rows, bars)) if out is None else out
    if start >= bars:
        result[...] = np.nan
        return result
    if overwrite_values and values.flags.c_contiguous and result.flags.c_contiguous:
        # Whole rows keep every array contiguous (one matrix product for all rows):
        # nothing drives the recurrence before the seed, the seed drives it at `start`.
        values[:, :start] = 0.0
        values[:, start] = np.asarray(seed) / alpha
        decay_recurrence(values, 1.0 - alpha, alpha, out=result, overwrite_drive=True)
    else:
        result[:, start] = seed
        after = slice(start + 1, bars)
        decay_recurrence(
            values[:, after], 1.0 - alpha, alpha, seed, out=result[:, after], overwrite_drive=overwrite_values
        )
    result[:, :start] = np.nan
    return result


def _running_mean(drive: np.ndarray, first_total: np.ndarray, window: int, out: np.ndarray) -> np.ndarray:
    """Rolling sum / window as one recurrence over whole rows; NaN before the first full window.

    `drive[:, window:]` holds the window-to-window changes; the first full window's
    total goes in at bar window-1. The changes are accumulated by the blocked
    recurrence, whose rounding grows with log(bars), not bars, so the sums stay
    exact to ~1e-15 of the price over millions of bars.
    """
    drive[:, : window - 1] = 0.0
    drive[:, window - 1] = first_total
    decay_recurrence(drive, 1.0, 1.0 / window, out=out, overwrite_drive=True)
    out[:, : window - 1] = np.nan
    return out


def rolling_mean(values: np.ndarray, window: int, out: np.ndarray | None = None) -> np.ndarray:
    """Mean of the last `window` values at each bar, NaN before the first full window."""
    rows, bars = values.shape
    result = np.empty((rows, bars)) if out is None else out
    if window > bars:
        result[...] = np.nan
        return result
    drive = np.empty((rows, bars))
    np.subtract(values[:, window:], values[:, :-window], out=drive[:, window:])
    return _running_mean(drive, values[:, :window].sum(axis=1), window, result)
