"""Validation splits a batch into stored rows and rejected rows with reasons."""

import math

import pytest

from services.core.timeframe import Timeframe
from services.ingest.validate import REJECTION_REASONS, validate_candles

H = 3_600_000
HOURLY = Timeframe.parse("1h")
NOW = 100 * H


def good(i, price=100.0):
    return [i * H, price, price + 2, price - 2, price + 1, 10.0]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([5 * H, math.nan, 102, 98, 101, 1], "non_finite_price"),
        ([5 * H, 100, 102, 98, math.inf, 1], "non_finite_price"),
        ([5 * H, 0.0, 102, 98, 101, 1], "non_positive_price"),
        ([5 * H, -1.0, 102, 98, 101, 1], "non_positive_price"),
        ([5 * H, 100, 97, 98, 97.5, 1], "high_below_low"),
        ([5 * H, 103, 102, 98, 101, 1], "open_outside_range"),
        ([5 * H, 100, 102, 98, 97, 1], "close_outside_range"),
        ([5 * H, 100, 102, 98, 101, -0.5], "negative_volume"),
        ([5 * H + 60_000, 100, 102, 98, 101, 1], "misaligned_timestamp"),
        ([101 * H, 100, 102, 98, 101, 1], "future_timestamp"),
        (["x", 100, 102, 98, 101, 1], "malformed"),
        ([5 * H, 100, 102], "malformed"),
        ([5 * H, "abc", 102, 98, 101, 1], "malformed"),
    ],
)
def test_each_kind_of_bad_candle_is_rejected_with_its_reason_and_good_ones_kept(row, reason):
    batch = validate_candles([good(1), row, good(10)], HOURLY, NOW)
    assert [r.reason for r in batch.rejected] == [reason]
    assert [g[0] for g in batch.good] == [1 * H, 10 * H]
    assert reason in REJECTION_REASONS


def test_a_duplicate_timestamp_keeps_the_first_and_rejects_the_second():
    batch = validate_candles([good(1), good(2), good(2, price=200.0)], HOURLY, NOW)
    assert [g[0] for g in batch.good] == [1 * H, 2 * H]
    assert batch.good[1][1] == 100.0
    assert [(r.reason, r.raw_ts) for r in batch.rejected] == [("duplicate_timestamp", 2 * H)]


def test_a_row_going_back_in_time_is_rejected_as_out_of_order():
    batch = validate_candles([good(1), good(3), good(2), good(4)], HOURLY, NOW)
    assert [g[0] for g in batch.good] == [1 * H, 3 * H, 4 * H]
    assert [r.reason for r in batch.rejected] == ["out_of_order"]


def test_the_open_candle_starting_before_now_is_valid():
    batch = validate_candles([good(99), [NOW, 1, 1, 1, 1, 0]], HOURLY, NOW + 1)
    assert len(batch.good) == 2 and not batch.rejected


def test_rejected_raw_rows_are_json_safe():
    batch = validate_candles([[5 * H, math.nan, 1, 1, 1, 1]], HOURLY, NOW)
    assert batch.rejected[0].raw[1] == "nan"
