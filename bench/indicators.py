"""Indicator engine speed next to TA-Lib: the full set on 1M bars, and the hourly update of 1,000 instruments.

(1) compute_indicators on 1,000,000 bars against the same indicator set from
    TA-Lib's C functions (target: at most 2x TA-Lib's time); beside it, the same
    with a fresh result block each call (before the spare block) and the arrays alone.
(2) One new closed bar for each of 1,000 instruments with 5,000 bars of history,
    computed three ways: from each instrument's stored recursion state
    (advance_states, what the indicators stage does; target: at most 0.3 s), and
    by the warm-up path, compute_tail_batch for all at once and compute_tail per
    instrument (re-reading ~3,000 bars each; 1.2-1.5 s and 2.9-4.3 s before #15).

Compute only: no database. Single-threaded BLAS (set below, before numpy loads)
so both sides use one core. Times are the best of several interleaved runs,
medians alongside; the machine may be shared, so compare figures of one run.

    .venv/bin/python bench/indicators.py [--bars 1000000] [--instruments 1000] [--history 5000]
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import talib  # noqa: E402

from services.indicators import spare  # noqa: E402
from services.indicators.block import indicator_block  # noqa: E402
from services.indicators.engine import (  # noqa: E402
    IndicatorParams,
    compute_indicators,
    compute_tail,
    compute_tail_batch,
    compute_tail_batch_with_states,
    warmup_bars,
)
from services.indicators.incremental import advance_states  # noqa: E402
from tests.utils.series import realistic_candles  # noqa: E402

TARGET_FULL_RATIO = 2.0
TARGET_STATE_UPDATE_S = 0.3
# What the hourly update cost before issue #15 (docs/indicators.md, same VM): the anchors.
BEFORE_FULL_RATIO = "2.1-2.6x"
BEFORE_TAIL_BATCH_S = "1.2-1.5 s"
BEFORE_TAIL_ONE_BY_ONE_S = "2.9-4.3 s"


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


def timings(runs: int, *measured: Callable[[], object], cpu: list[list[float]] | None = None) -> list[list[float]]:
    """Seconds per run for each callable, interleaved so background load hits all alike.

    `cpu`, if given, receives the process's CPU seconds per run the same way: time other
    processes take from this one on a shared machine is not in it.
    """
    seconds: list[list[float]] = [[] for _ in measured]
    if cpu is not None:
        cpu[:] = [[] for _ in measured]
    for _ in range(runs):
        for index, function in enumerate(measured):
            started, started_cpu = time.perf_counter(), time.process_time()
            function()
            seconds[index].append(time.perf_counter() - started)
            if cpu is not None:
                cpu[index].append(time.process_time() - started_cpu)
    return seconds


def describe(samples: list[float]) -> str:
    if min(samples) < 0.1:
        return f"{min(samples) * 1e3:.1f} ms (median {statistics.median(samples) * 1e3:.1f})"
    return f"{min(samples):.3f} s (median {statistics.median(samples):.3f})"


def in_fresh_memory(function: Callable[[], object]) -> Callable[[], object]:
    """`function` with every block in fresh memory (np.empty), as before the spare block."""

    def measured() -> object:
        kept, spare.SHARED = spare.SHARED, spare.SpareMemory(max_bytes=0)
        try:
            return function()
        finally:
            spare.SHARED = kept

    return measured


def bench_full_set(bars: int, runs: int, label: str = "") -> None:
    candles = realistic_candles(bars=bars, seed=1, freq="1min")
    prices = [candles[column].to_numpy()[None, :] for column in ("high", "low", "close")]
    params = IndicatorParams()
    cpu: list[list[float]] = []
    ours, fresh, arrays, theirs = timings(
        runs,
        lambda: compute_indicators(candles, params),
        in_fresh_memory(lambda: compute_indicators(candles, params)),
        lambda: indicator_block(*prices, params),
        lambda: talib_full_set(candles),
        cpu=cpu,
    )
    ratio = min(ours) / min(theirs)
    print(f"(1) full set, {bars:,} bars (18 columns + regime; TA-Lib: 14 calls, no frame){label}:")
    print(
        f"    ours {describe(ours)}, TA-Lib {describe(theirs)}, "
        f"ratio {ratio:.2f}x (target <= {TARGET_FULL_RATIO:g}x; before #15: {BEFORE_FULL_RATIO})"
    )
    # What the spare block saves: the kernel zeroing a fresh mapping on first touch.
    print(f"    ours with a fresh block each time: {describe(fresh)}, ratio {min(fresh) / min(theirs):.2f}x")
    # The same arithmetic without what only the frame contract asks for: input checks,
    # the object array of regime names, the DataFrame.
    print(f"    the indicator arrays alone (indicator_block): {describe(arrays)}, "
          f"ratio {min(arrays) / min(theirs):.2f}x")
    ours_cpu, fresh_cpu, arrays_cpu, theirs_cpu = cpu
    print(f"    CPU time: ours {describe(ours_cpu)}, TA-Lib {describe(theirs_cpu)}, "
          f"ratio {min(ours_cpu) / min(theirs_cpu):.2f}x; a fresh block {min(fresh_cpu) / min(theirs_cpu):.2f}x, "
          f"the arrays alone {min(arrays_cpu) / min(theirs_cpu):.2f}x")


def keep_freed_memory() -> bool:
    """Ask glibc to serve big blocks from its heap and keep freed memory, as MALLOC_MMAP_THRESHOLD_ would.

    By default glibc maps every block over 32 MB afresh and the kernel zeroes it on first
    touch, while TA-Lib's 8 MB outputs are recycled from the heap. The result block has
    its spare (services/indicators/spare.py); this measures what the rest (temporaries of
    8-16 MB that glibc trims and maps again) still costs. It is not the default.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mmap_threshold, trim_threshold = -3, -1  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD in malloc.h
    return bool(libc.mallopt(mmap_threshold, 512 << 20) and libc.mallopt(trim_threshold, 1 << 30))


def bench_hourly_update(instruments: int, history: int, runs: int) -> None:
    params = IndicatorParams()
    frames = {n: realistic_candles(bars=history, seed=1_000 + n, price=1.0 + n) for n in range(instruments)}
    # The stored states end at the bar before the newest one, as after the previous hour's run.
    built = compute_tail_batch_with_states(
        {n: frame.iloc[:-1] for n, frame in frames.items()}, params, {n: frame.index[-2] for n, frame in frames.items()}
    )
    states = {n: state for n, (_, state) in built.items()}
    new_bars = pd.concat([frame.iloc[-1:].assign(instrument_id=n) for n, frame in frames.items()])
    since = {n: frame.index[-1] for n, frame in frames.items()}
    from_state, batched, one_by_one = timings(
        runs,
        lambda: advance_states(states, new_bars, params),
        lambda: compute_tail_batch(frames, params, since),
        lambda: [compute_tail(frame, params, since[n]) for n, frame in frames.items()],
    )
    print(
        f"(2) hourly update, {instruments:,} instruments x 1 new closed bar "
        f"({history:,}-bar histories; warm-up window {warmup_bars(params):,} bars; compute only, one core):"
    )
    print(f"    from stored states (advance_states): {describe(from_state)} (target <= {TARGET_STATE_UPDATE_S:g} s)")
    print(f"    warm-up, compute_tail_batch:         {describe(batched)} (before #15: {BEFORE_TAIL_BATCH_S})")
    print(f"    warm-up, compute_tail one by one:    {describe(one_by_one)} (before #15: {BEFORE_TAIL_ONE_BY_ONE_S})")
    print(f"    the state path is {min(batched) / min(from_state):,.0f}x faster than compute_tail_batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--instruments", type=int, default=1_000)
    parser.add_argument("--history", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7)
    arguments = parser.parse_args()
    bench_full_set(arguments.bars, arguments.runs)
    bench_hourly_update(arguments.instruments, arguments.history, max(3, arguments.runs // 2))
    if keep_freed_memory():
        bench_full_set(arguments.bars, arguments.runs, label=", glibc keeping big blocks in its heap")


if __name__ == "__main__":
    main()
