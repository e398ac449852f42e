"""A big block reuses memory no array refers to any more, never memory in use, and computes the same values."""

import os

import numpy as np
import pandas as pd
import pytest

from services.indicators import spare
from services.indicators.engine import (
    IndicatorParams,
    compute_indicators,
    compute_tail_batch_with_states,
    warmup_bars,
)
from services.indicators.regime import REGIMES
from services.indicators.spare import SpareMemory
from tests.utils.series import realistic_candles

SHAPE = (18, 1_000)
NBYTES = 8 * 18 * 1_000


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def test_a_block_no_array_refers_to_is_handed_out_again():
    memory = SpareMemory(min_bytes=0)
    first = memory.empty(SHAPE)
    where = address(first)
    del first
    assert memory.spare_bytes() == NBYTES
    again = memory.empty(SHAPE)
    assert address(again) == where and again.shape == SHAPE and again.dtype == np.float64
    assert memory.spare_bytes() == 0  # handed out, so no longer spare


def test_memory_a_frame_still_shows_is_never_handed_out():
    memory = SpareMemory(min_bytes=0)
    block = memory.empty(SHAPE)
    block[...] = 1.0
    frame = pd.DataFrame(block.T, copy=False)
    column, rows = frame[3], frame.iloc[10:20]
    del block, frame
    other = memory.empty(SHAPE)
    other[...] = 2.0
    assert (column == 1.0).all() and (rows.to_numpy() == 1.0).all()
    del column
    assert memory.spare_bytes() == 0  # the slice of rows still shows the first block
    del rows
    assert memory.spare_bytes() == NBYTES


def test_a_spare_of_another_size_is_not_reused():
    memory = SpareMemory(min_bytes=0)
    small = memory.empty(SHAPE)
    del small
    bigger = memory.empty((18, 2_000))
    assert memory.spare_bytes() == 0  # the smaller spare was dropped, not kept beside it
    del bigger
    assert memory.spare_bytes() == 2 * NBYTES


@pytest.mark.parametrize("shape", [(18, 10), (18, 100_000)])
def test_blocks_outside_the_bounds_are_plain_numpy_arrays(shape):
    memory = SpareMemory(min_bytes=8 * 18 * 100, max_bytes=8 * 18 * 10_000)
    block = memory.empty(shape)
    assert block.flags.owndata and block.shape == shape
    del block
    assert memory.spare_bytes() == 0


def test_a_block_of_no_bars_is_a_plain_numpy_array():
    block = SpareMemory(min_bytes=0).empty((18, 0))  # mmap cannot map 0 bytes
    assert block.flags.owndata and block.shape == (18, 0)


def test_a_forked_process_writes_into_its_own_copy():
    # Celery's prefork workers fork: a shared mapping would let a child write into its parent's block.
    memory = SpareMemory(min_bytes=0)
    block = memory.empty(SHAPE)
    block[...] = 1.0
    child = os.fork()
    if child == 0:
        block[...] = 2.0
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (block == 1.0).all()


@pytest.fixture
def reused_memory(monkeypatch):
    """The engine's blocks through a spare that holds garbage, and the same engine on fresh numpy memory."""
    poisoned = SpareMemory(min_bytes=0)
    fresh = SpareMemory(max_bytes=0)  # keeps nothing: np.empty every time

    def compute(memory, function):
        monkeypatch.setattr(spare, "SHARED", memory)
        return function()

    return poisoned, fresh, compute


def poison(memory: SpareMemory, shape: tuple[int, ...]) -> int:
    """Leave a spare of `shape` full of values no indicator has; its address."""
    block = memory.empty(shape)
    block[...] = 1e300
    block[:, ::7] = -3.0
    return address(block)


def test_compute_indicators_gives_the_same_frame_in_reused_memory(reused_memory):
    poisoned, fresh, compute = reused_memory
    candles = realistic_candles(bars=3_000, seed=5)
    expected = compute(fresh, lambda: compute_indicators(candles, IndicatorParams()))
    where = poison(poisoned, (18, 3_000))
    actual = compute(poisoned, lambda: compute_indicators(candles, IndicatorParams()))
    assert address(actual["rsi"].to_numpy()) in range(where, where + 8 * 18 * 3_000)  # it did reuse the spare
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    assert actual["regime"].dtype == object and set(actual["regime"].dropna()) <= set(REGIMES)
    assert actual["regime"].tolist() == expected["regime"].tolist()  # the names, and None in the warm-up


def test_states_taken_in_reused_memory_are_the_same(reused_memory):
    poisoned, fresh, compute = reused_memory
    frames = {n: realistic_candles(bars=3_200, seed=40 + n, price=10.0 + n) for n in range(3)}
    since = {n: frame.index[-5] for n, frame in frames.items()}
    expected = compute(fresh, lambda: compute_tail_batch_with_states(frames, IndicatorParams(), since))
    shape = (18, 3, warmup_bars(IndicatorParams()) + 5)  # each window: the warm-up and 5 new bars
    where = poison(poisoned, shape)
    actual = compute(poisoned, lambda: compute_tail_batch_with_states(frames, IndicatorParams(), since))
    assert address(poisoned.empty(shape)) == where  # the computation took the poisoned spare and gave it back
    for n in frames:
        pd.testing.assert_frame_equal(actual[n][0], expected[n][0], check_exact=True)
        assert actual[n][1].last_ts == expected[n][1].last_ts
        np.testing.assert_array_equal(actual[n][1].vector, expected[n][1].vector)
