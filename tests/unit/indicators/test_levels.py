"""Support/resistance levels on hand-made series with known swing points."""

from dataclasses import FrozenInstanceError

import pytest

from services.indicators.levels import LEVEL_COLUMNS, LevelParams, find_levels, swing_highs, swing_lows
from tests.utils.candles import bar, frame

SWING2 = LevelParams(swing=2)


def around(mid: float, low: float | None = None, high: float | None = None):
    """A flat bar at `mid` whose wicks reach `low`/`high` (default half a point)."""
    return bar(mid, mid + 0.5 if high is None else high, mid - 0.5 if low is None else low, mid)


# Lows touch ~100 three times (99.8, 100.0, 100.2), highs touch ~110 twice (110.0, 110.1); ends at 105.
SAWTOOTH = [
    around(108),
    around(105),
    around(100.5, low=100.0),  # 2: swing low
    around(105),
    around(109.5, high=110.0),  # 4: swing high
    around(105),
    around(100.5, low=99.8),  # 6: swing low
    around(105),
    around(109.5, high=110.1),  # 8: swing high
    around(105),
    around(100.5, low=100.2),  # 10: swing low
    around(105),
    around(105),
]


def test_swing_points_are_bars_that_top_or_undercut_their_neighbours():
    candles = frame(SAWTOOTH)
    assert swing_highs(candles, 2).to_numpy().nonzero()[0].tolist() == [4, 8]
    assert swing_lows(candles, 2).to_numpy().nonzero()[0].tolist() == [2, 6, 10]


def test_a_sawtooth_gives_support_near_100_with_three_touches_and_resistance_near_110_with_two():
    candles = frame(SAWTOOTH)
    levels = find_levels(candles, SWING2)
    assert list(levels.columns) == LEVEL_COLUMNS
    assert levels["kind"].tolist() == ["resistance", "support"]
    resistance, support = levels.iloc[0], levels.iloc[1]
    assert support["price"] == pytest.approx(100.0)
    assert support["touches"] == 3
    assert (support["first_ts"], support["last_ts"]) == (candles.index[2], candles.index[10])
    assert resistance["price"] == pytest.approx(110.05)
    assert resistance["touches"] == 2
    assert (resistance["first_ts"], resistance["last_ts"]) == (candles.index[4], candles.index[8])


def test_strength_weighs_touches_against_the_most_touched_level_and_recency():
    levels = find_levels(frame(SAWTOOTH), SWING2).set_index("kind")
    # touches 3/3 and last touch at bar 10 of 12; resistance 2/3 and bar 8 of 12
    assert levels.loc["support", "strength"] == pytest.approx(0.7 * 1 + 0.3 * 10 / 12)
    assert levels.loc["resistance", "strength"] == pytest.approx(0.7 * 2 / 3 + 0.3 * 8 / 12)
    assert levels["strength"].between(0, 1).all()


def test_swings_further_apart_than_the_tolerance_stay_separate_levels():
    levels = find_levels(frame(SAWTOOTH), LevelParams(swing=2, tolerance=0.001))
    supports = levels[levels["kind"] == "support"]
    assert supports["price"].tolist() == pytest.approx([99.8, 100.0, 100.2])
    assert supports["touches"].tolist() == [1, 1, 1]


def test_levels_with_too_few_touches_are_dropped():
    levels = find_levels(frame(SAWTOOTH), LevelParams(swing=2, min_touches=3))
    assert levels["kind"].tolist() == ["support"]


def test_a_level_below_the_last_close_is_support_even_if_it_was_made_by_highs():
    breakout = [around(112), around(115), around(116)]
    levels = find_levels(frame([*SAWTOOTH, *breakout]), SWING2)
    assert levels["kind"].tolist() == ["support", "support"]
    assert levels["price"].tolist() == pytest.approx([100.0, 110.05])
    assert levels["touches"].tolist() == [3, 2]


def test_a_flat_top_of_equal_highs_counts_as_one_swing():
    flat_top = [around(100), around(101), around(104.5, high=105), around(104.5, high=105), around(101), around(100)]
    candles = frame([*flat_top, around(100)])
    assert swing_highs(candles, 2).to_numpy().nonzero()[0].tolist() == [2]
    resistance = find_levels(candles, SWING2).query("kind == 'resistance'")
    assert resistance["touches"].tolist() == [1]


def test_the_last_bars_are_never_swings_because_their_right_side_is_unknown():
    candles = frame([around(100), around(101), around(102), around(103), around(110)])
    assert not swing_highs(candles, 2).any()


def test_levels_come_ordered_by_kind_then_price():
    levels = find_levels(frame(SAWTOOTH), LevelParams(swing=2, tolerance=0.001))
    ordered = levels.sort_values(["kind", "price"], ignore_index=True)
    assert levels.equals(ordered)


def test_a_frame_shorter_than_a_swing_window_has_no_levels():
    levels = find_levels(frame(SAWTOOTH[:4]), SWING2)
    assert levels.empty
    assert list(levels.columns) == LEVEL_COLUMNS


def test_a_frame_without_swings_has_no_levels():
    rising = [around(100 + i) for i in range(10)]
    assert find_levels(frame(rising), SWING2).empty


def test_level_params_are_frozen():
    with pytest.raises(FrozenInstanceError):
        LevelParams().swing = 5
