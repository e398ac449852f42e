"""TA-Lib-equal indicator formulas on (instruments, bars) price arrays."""

from __future__ import annotations

import numpy as np

from services.indicators.smoothing import rolling_mean, seeded_smoothing
from services.indicators.windows import rolling_mean_std

__all__ = [
    "average_true_range",
    "bollinger_bands",
    "directional_averages",
    "directional_movement_index",
    "directional_range_at",
    "exponential_moving_average",
    "macd",
    "macd_averages",
    "macd_from_averages",
    "relative_strength_index",
    "rsi_averages",
    "simple_moving_average",
    "true_range",
]

# Every function takes float64 arrays shaped (instruments, bars), time along the
# last axis, never writes to its inputs, returns arrays of the same shape with NaN
# during the warm-up, and reproduces TA-Lib's seeding so values agree from
# TA-Lib's first output bar. `out` arguments let the engine write straight into
# its result block; series that share a smoothing run stacked as extra rows.


def simple_moving_average(close: np.ndarray, period: int, out: np.ndarray | None = None) -> np.ndarray:
    """TA_SMA: the mean of the last `period` closes; first value at bar period-1."""
    return rolling_mean(close, period, out=out)


def exponential_moving_average(
    values: np.ndarray,
    period: int,
    seed_end: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """TA_EMA: alpha = 2/(period+1), seeded with the SMA of `period` values.

    The seed window ends at bar `seed_end` (default period-1, TA-Lib's EMA); the
    MACD moves its fast seed later so both of its EMAs start on the same bar.
    """
    seed_end = period - 1 if seed_end is None else seed_end
    seed = _mean_of_bars(values, seed_end + 1 - period, seed_end + 1)
    return seeded_smoothing(values, seed_end, seed, 2.0 / (period + 1), out=out)


def _mean_of_bars(values: np.ndarray, first: int, stop: int) -> np.ndarray:
    """Per-row mean of bars first..stop-1 (a seed); zeros if the series is too short to seed."""
    if stop > values.shape[1]:
        return np.zeros(values.shape[0])
    return values[:, first:stop].mean(axis=1)


def macd(
    close: np.ndarray,
    fast: int,
    slow: int,
    signal: int,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA_MACD: (line, signal, histogram), all three first defined at bar slow+signal-2.

    Like TA-Lib, the fast EMA's seed window ends on the slow EMA's seed bar
    (slow-1) instead of at fast-1, the line is fast - slow, the signal is an EMA
    of the line seeded by the SMA of its first `signal` values, and the line is
    hidden until the signal exists.
    """
    line, signal_line, histogram = out if out is not None else (np.empty_like(close) for _ in range(3))
    averages = macd_averages(close, fast, slow, out=(histogram, line))
    return macd_from_averages(*averages, slow, signal, out=(line, signal_line, histogram))


def macd_averages(
    close: np.ndarray, fast: int, slow: int, out: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MACD's (fast EMA, slow EMA), both seeded so that they start on bar slow-1, as TA-Lib does."""
    fast_out, slow_out = out if out is not None else (None, None)
    fast_ema = exponential_moving_average(close, fast, seed_end=slow - 1, out=fast_out)
    return fast_ema, exponential_moving_average(close, slow, out=slow_out)


def macd_from_averages(
    fast_ema: np.ndarray,
    slow_ema: np.ndarray,
    slow: int,
    signal: int,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, signal, histogram) from MACD's two EMAs; `out` may hold them (slow in line, fast in histogram)."""
    line, signal_line, histogram = out
    np.subtract(fast_ema, slow_ema, out=line)
    first_signal = slow - 1 + signal - 1
    # The line is NaN before bar slow-1, so this seed is the mean of its first `signal` values.
    exponential_moving_average(line, signal, seed_end=first_signal, out=signal_line)
    line[:, :first_signal] = np.nan
    np.subtract(line, signal_line, out=histogram)
    return line, signal_line, histogram


def relative_strength_index(
    close: np.ndarray, period: int, out: np.ndarray | None = None, averages: np.ndarray | None = None
) -> np.ndarray:
    """TA_RSI: Wilder-smoothed gains over gains + losses, first value at bar `period`.

    Both averages are seeded with the plain mean of the first `period` changes.
    Where nothing moved at all (gains + losses == 0) the RSI is 0, as in TA-Lib;
    TA-Lib's absolute 1e-8 cut-off is not copied because it depends on the
    price's scale (it would zero the RSI of a coin quoted at 1e-6).
    `averages`: rsi_averages(close, period), if already at hand.
    """
    average_gain, average_movement = rsi_averages(close, period) if averages is None else averages
    return _percent(average_gain, average_movement, period, out=out)


def rsi_averages(
    close: np.ndarray, period: int, moves: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """RSI's Wilder averages as one (2, rows, bars) array: of gains, and of |changes| (gains + losses).

    `moves` (scratch) and `out`: C-contiguous (2, rows, bars) arrays to use instead of fresh ones.
    """
    rows, bars = close.shape
    # Smoothing gains and |changes| (= gains + losses) gives the denominator directly.
    moves = np.empty((2, rows, bars)) if moves is None else moves
    gain, movement = moves
    gain[:, 0] = movement[:, 0] = 0.0
    change = np.subtract(close[:, 1:], close[:, :-1], out=movement[:, 1:])
    np.maximum(change, 0.0, out=gain[:, 1:])
    np.abs(change, out=change)
    stacked = _stacked(moves)
    seeds = _mean_of_bars(stacked, 1, period + 1)
    averages = seeded_smoothing(stacked, period, seeds, 1.0 / period, out=_stacked(out), overwrite_values=True)
    return averages.reshape(2, rows, bars)


def _stacked(pair: np.ndarray | None) -> np.ndarray | None:
    """A (2, rows, bars) array as (2 * rows, bars), always a view (raises rather than copying)."""
    if pair is None:
        return None
    view = pair.view()
    view.shape = (-1, pair.shape[-1])
    return view


def _percent(numerator: np.ndarray, denominator: np.ndarray, start: int, out: np.ndarray | None = None) -> np.ndarray:
    """100 * (numerator / denominator) in TA-Lib's order of operations; 0 where the denominator is 0.

    Both are NaN before bar `start` and finite after it; a zero denominator only
    happens when nothing has moved yet (0 / 0), which TA-Lib reports as 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.divide(numerator, denominator, out=out)
    # min() is a cheap read-only pass; the mask is built only if a zero exists.
    if start < denominator.shape[1] and np.min(denominator[:, start:]) == 0.0:
        result[denominator == 0.0] = 0.0
    result *= 100.0
    return result


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """TA_TRANGE: max(high, previous close) - min(low, previous close); NaN at bar 0.

    The same subtraction TA-Lib picks among |h-l|, |h-pc|, |l-pc|, so bit-equal.
    """
    previous_close = close[:, :-1]
    result = np.empty_like(close) if out is None else out
    result[:, 0] = np.nan
    np.maximum(high[:, 1:], previous_close, out=result[:, 1:])
    result[:, 1:] -= np.minimum(low[:, 1:], previous_close)
    return result


def average_true_range(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    out: np.ndarray | None = None,
    ranges: np.ndarray | None = None,
) -> np.ndarray:
    """TA_ATR: Wilder smoothing of the true range seeded with the mean of TR[1..period].

    `ranges`: a (rows, bars) scratch array for the true ranges instead of a fresh one.
    """
    ranges = true_range(high, low, close, out=ranges)
    seed = _mean_of_bars(ranges, 1, period + 1)
    return seeded_smoothing(ranges, period, seed, 1.0 / period, out=out, overwrite_values=True)


def directional_movement_index(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    average_range: np.ndarray | None = None,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    averages: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA_PLUS_DI, TA_MINUS_DI and TA_ADX as (plus_di, minus_di, adx).

    TA-Lib sums the first period-1 directional moves and true ranges, applies one
    Wilder step at bar `period` (the first DI), then keeps smoothing; the ADX is
    the mean of the first `period` DX values (first at bar 2*period-1), then
    Wilder-smoothed. A zero denominator gives 0, as in TA-Lib (without its
    scale-dependent 1e-8 cut-off). `average_range`, the ATR over the same period
    if already computed, saves smoothing the true range a second time;
    `averages`, directional_averages(high, low, period) if already at hand (it is
    overwritten); `scratch`, a (rows, bars) array for the range factor and the DX.
    """
    plus_di, minus_di, adx = out if out is not None else (np.empty_like(high) for _ in range(3))
    smoothed_plus, smoothed_minus = directional_averages(high, low, period) if averages is None else averages
    per_range = _percent_per_range(high, low, close, period, average_range, out=scratch)
    np.multiply(smoothed_plus, per_range, out=plus_di)
    np.multiply(smoothed_minus, per_range, out=minus_di)
    plus_di[:, :period] = minus_di[:, :period] = np.nan
    # The averages are spent: their memory holds the spread and the sum of the DIs.
    spread = np.subtract(plus_di, minus_di, out=smoothed_plus)
    np.abs(spread, out=spread)
    dx = _percent(spread, np.add(plus_di, minus_di, out=smoothed_minus), period, out=per_range)
    first_adx = 2 * period - 1
    seed = _mean_of_bars(dx, period, first_adx + 1)
    seeded_smoothing(dx, first_adx, seed, 1.0 / period, out=adx, overwrite_values=True)
    return plus_di, minus_di, adx


def directional_averages(
    high: np.ndarray, low: np.ndarray, period: int, moves: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """Wilder averages of +DM and -DM as one (2, rows, bars) array, first at bar period-1.

    TA-Lib's running *sums* divided by `period` are these averages, so the seed is
    the sum of the first period-1 moves over `period`. `moves` (scratch) and `out`:
    C-contiguous (2, rows, bars) arrays to use instead of fresh ones.
    """
    rows, bars = high.shape
    moves = np.empty((2, rows, bars)) if moves is None else moves
    _directional_moves(high, low, *moves)
    stacked = _stacked(moves)
    seeds = stacked[:, 1:period].sum(axis=1) / period
    smoothed = seeded_smoothing(stacked, period - 1, seeds, 1.0 / period, out=_stacked(out), overwrite_values=True)
    return smoothed.reshape(2, rows, bars)


def directional_range_at(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    positions: np.ndarray,
    average_range: np.ndarray | None = None,
) -> np.ndarray:
    """TA-Lib's smoothed true range for the DI (an average, like the ATR) at each row's bar positions[row].

    With `average_range` (the ATR over the same period) it is the ATR plus the
    difference of the two seeds, decayed; otherwise the smoothing is run.
    """
    rows = np.arange(high.shape[0])
    first_range = _first_directional_range(high, low, close, period)
    if average_range is None:
        ranges = true_range(high, low, close)
        smoothed = seeded_smoothing(ranges, period, first_range, 1.0 / period, overwrite_values=True)
        return smoothed[rows, positions]
    fading = np.power(1.0 - 1.0 / period, (positions - period).astype(float))
    return average_range[rows, positions] + (first_range - average_range[:, period]) * fading


def _first_directional_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """The DI's smoothed true range at bar `period`: one Wilder step after the sum of TR[1..period-1]."""
    head = slice(0, period + 1)
    ranges = true_range(high[:, head], low[:, head], close[:, head])
    alpha = 1.0 / period
    return (1.0 - alpha) * (ranges[:, 1:period].sum(axis=1) * alpha) + alpha * ranges[:, period]


def _percent_per_range(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    average_range: np.ndarray | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """100 / TA-Lib's smoothed true range for the DI, from bar `period` on (0 where the range is 0).

    TA-Lib's DI range starts one bar before the ATR's, from a different seed; as
    both are the same Wilder smoothing of the same true ranges, the DI range is
    the ATR (`average_range`, if given) plus the seed difference decaying as
    (1 - 1/period)**n.
    """
    rows, bars = high.shape
    alpha = 1.0 / period
    decay = 1.0 - alpha
    result = np.empty((rows, bars)) if out is None else out
    result[:, :period] = np.nan
    if period >= bars:
        return result
    first_range = _first_directional_range(high, low, close, period)
    settled = slice(period, bars)
    with np.errstate(divide="ignore"):
        if average_range is None:
            ranges = true_range(high, low, close)
            smoothed = seeded_smoothing(ranges, period, first_range, alpha, overwrite_values=True)
            np.divide(100.0, smoothed[:, settled], out=result[:, settled])
        else:
            np.divide(100.0, average_range[:, settled], out=result[:, settled])
            head = slice(period, min(bars, period + _forgotten_after(decay)))
            fading = np.power(decay, np.arange(head.stop - head.start, dtype=float))
            seed_gap = (first_range - average_range[:, period])[:, None]
            result[:, head] = 100.0 / (average_range[:, head] + seed_gap * fading)
    # A zero range (nothing has traded at all yet) gives DI 0, as in TA-Lib.
    if np.max(result[:, settled]) == np.inf:
        result[np.isinf(result)] = 0.0
    return result


def _forgotten_after(decay: float) -> int:
    """Bars after which decay**n < 2**-60: a seed difference is below float64 resolution."""
    return int(np.ceil(-60.0 * np.log(2.0) / np.log(decay))) + 1


def _directional_moves(high: np.ndarray, low: np.ndarray, plus_dm: np.ndarray, minus_dm: np.ndarray) -> None:
    """Fill (+DM, -DM): the up-move or down-move, whichever is larger, if positive; else 0."""
    up, down = plus_dm[:, 1:], minus_dm[:, 1:]
    plus_dm[:, 0] = minus_dm[:, 0] = 0.0
    np.subtract(high[:, 1:], high[:, :-1], out=up)
    np.subtract(low[:, :-1], low[:, 1:], out=down)
    # "Larger and positive" is the positive part where it is the larger move. Masks
    # multiplied in are ~3x cheaper than copyto(where=...); equal moves give 0 to both.
    up_wins, down_wins = up > down, down > up
    np.maximum(up, 0.0, out=up)
    np.maximum(down, 0.0, out=down)
    up *= up_wins
    down *= down_wins


def bollinger_bands(close: np.ndarray, period: int, width: float, out: np.ndarray | None = None) -> np.ndarray:
    """TA_BBANDS with an SMA middle (matype=0), as one (3, rows, bars) array: upper, middle, lower.

    The bands are middle +/- width * population std; the standard deviation is
    computed in the lower band's place, which is why the three share one array.
    """
    bands = np.empty((3, *close.shape)) if out is None else out
    upper, middle, lower = bands
    rolling_mean_std(close, period, out=bands[1:])
    offset = lower
    offset *= width
    np.add(middle, offset, out=upper)
    np.subtract(middle, offset, out=lower)
    return bands
