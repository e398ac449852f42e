"""Indicator engine speed next to TA-Lib: the full set on 1M bars, and the hourly tail update.

(1) compute_indicators on 1,000,000 bars against the same indicator set from
    TA-Lib's C functions (target: at most 2x TA-Lib's time).
(2) One new bar for each of 1,000 instruments with 5,000 bars of history:
    compute_tail per instrument, and compute_tail_batch for all at once
    (target: under 2 s in total, on one core).

Single-threaded BLAS (set below, before numpy loads) so both sides use one core.
Times are the best of several runs, medians alongside; the machine may be shared.

    .venv/bin/python bench/indicators.py [--bars 1000000] [--instruments 1000] [--history 5000]
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import talib  # noqa: E402

from services.indicators.engine import (  # noqa: E402
    IndicatorParams,
    compute_indicators,
    compute_tail,
    compute_tail_batch,
    warmup_bars,
)
from tests.utils.series import realistic_candles  # noqa: E402

TARGET_FULL_RATIO = 2.0
TARGET_UPDATE_S = 2.0


def talib_full_set(candles: pd.DataFrame) -> None:
    """The same indicators compute_indicators returns, from TA-Lib's C functions."""
    high, low, close = (candles[column].to_numpy() for column in ("high", "low", "close"))
    talib.RSI(close, 14)
    talib.SMA(close, 20)
    talib.SMA(close, 50)
    talib.EMA(close, 20)
    talib.EMA(close, 50)
    talib.EMA(close, 200)
    talib.MACD(close, 12, 26, 9)
    talib.ADX(high, low, close, 14)
    talib.PLUS_DI(high, low, close, 14)
    talib.MINUS_DI(high, low, close, 14)
    talib.ATR(high, low, close, 14)
    talib.BBANDS(close, 20, 2.0, 2.0, 0)
    talib.EMA(high, 33)
    talib.EMA(low, 33)


def timings(runs: int, *measured: Callable[[], object]) -> list[list[float]]:
    """Seconds per run for each callable, interleaved so background load hits all alike."""
    seconds: list[list[float]] = [[] for _ in measured]
    for _ in range(runs):
        for samples, function in zip(seconds, measured, strict=True):
            started = time.perf_counter()
            function()
            samples.append(time.perf_counter() - started)
    return seconds


def describe(samples: list[float]) -> str:
    return f"{min(samples):.3f} s (median {statistics.median(samples):.3f})"


def bench_full_set(bars: int, runs: int) -> None:
    candles = realistic_candles(bars=bars, seed=1, freq="1min")
    ours, theirs = timings(
        runs, lambda: compute_indicators(candles, IndicatorParams()), lambda: talib_full_set(candles)
    )
    ratio = min(ours) / min(theirs)
    print(f"(1) full set, {bars:,} bars (18 columns + regime; TA-Lib: 14 calls, no frame):")
    print(
        f"    ours {describe(ours)}, TA-Lib {describe(theirs)}, "
        f"ratio {ratio:.2f}x (target <= {TARGET_FULL_RATIO:g}x)"
    )


def bench_tail_update(instruments: int, history: int, runs: int) -> None:
    params = IndicatorParams()
    frames = {
        f"instrument-{n}": realistic_candles(bars=history, seed=1_000 + n, price=1.0 + n) for n in range(instruments)
    }
    # The hourly update: only the newest bar of each instrument is new.
    since = {key: frame.index[-1] for key, frame in frames.items()}
    one_by_one, batched = timings(
        runs,
        lambda: [compute_tail(frame, params, since[key]) for key, frame in frames.items()],
        lambda: compute_tail_batch(frames, params, since),
    )
    print(
        f"(2) tail update, {instruments:,} instruments x 1 new bar "
        f"({history:,}-bar histories, warm-up window {warmup_bars(params):,} bars, one core):"
    )
    print(f"    compute_tail one by one: {describe(one_by_one)} (target < {TARGET_UPDATE_S:g} s)")
    print(f"    compute_tail_batch:      {describe(batched)} (target < {TARGET_UPDATE_S:g} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--instruments", type=int, default=1_000)
    parser.add_argument("--history", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7)
    arguments = parser.parse_args()
    bench_full_set(arguments.bars, arguments.runs)
    bench_tail_update(arguments.instruments, arguments.history, max(3, arguments.runs // 2))


if __name__ == "__main__":
    main()
