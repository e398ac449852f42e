"""Candlestick-pattern detectors on hand-made candles whose answer is known."""

from dataclasses import FrozenInstanceError

import pandas as pd
import pytest

from services.indicators.patterns import PATTERN_COLUMNS, PATTERNS, PatternParams, detect_patterns
from tests.utils.candles import bar, frame, steady

DECLINE = steady(110, -1, 6)  # closes 109 .. 104
ADVANCE = steady(100, 1, 6)  # closes 101 .. 106

HAMMER = bar(103.6, 104.05, 102.0, 104.0)  # body 0.4, lower shadow 1.6, upper 0.05
SHOOTING_STAR = bar(106.4, 108.0, 105.95, 106.0)  # body 0.4, upper shadow 1.6, lower 0.05

MORNING_STAR = [
    bar(110, 110.5, 104.5, 105),  # long falling bar, body 5 of range 6
    bar(105, 105.3, 104.2, 104.6),  # small star at the first close
    bar(104.7, 109.2, 104.5, 109),  # rising bar closing 80% back into the first body
]
EVENING_STAR = [
    bar(100, 105.5, 99.5, 105),
    bar(105, 105.8, 104.7, 105.4),
    bar(105.3, 105.5, 100.8, 101),
]


def found(candles, pattern, params=PatternParams()):
    rows = detect_patterns(candles, params)
    return rows[rows["pattern"] == pattern].reset_index(drop=True)


def last_ts(candles):
    return candles.index[-1]


# doji


def test_a_bar_with_no_body_is_a_doji_of_full_strength():
    rows = found(frame([bar(100, 101, 99, 100)]), "doji")
    assert rows["strength"].tolist() == [1.0]
    assert rows["direction"].tolist() == ["neutral"]


def test_a_doji_strength_falls_as_the_body_approaches_the_limit():
    rows = found(frame([bar(100, 101, 99, 100.05)]), "doji")  # body is 2.5% of range, limit 10%
    assert rows["strength"].tolist() == pytest.approx([0.75])


def test_a_bar_with_a_body_over_a_tenth_of_its_range_is_not_a_doji():
    assert found(frame([bar(100, 101, 99, 100.25)]), "doji").empty


def test_a_bar_with_no_range_is_not_a_doji():
    assert found(frame([bar(100, 100, 100, 100)]), "doji").empty


def test_a_looser_doji_limit_accepts_a_larger_body():
    candles = frame([bar(100, 101, 99, 100.25)])
    assert len(found(candles, "doji", PatternParams(doji_body_max=0.2))) == 1


# hammer and shooting star


def test_a_hammer_after_a_decline_fires_on_the_hammer_bar():
    candles = frame([*DECLINE, HAMMER])
    rows = found(candles, "hammer")
    assert rows["ts"].tolist() == [last_ts(candles)]
    assert rows["direction"].tolist() == ["bullish"]
    assert rows["strength"].tolist() == pytest.approx([1.6 / 2.05])


def test_a_hammer_shape_after_an_advance_is_not_a_hammer():
    hanging_man = bar(105.6, 106.05, 104.0, 106.0)
    assert found(frame([*ADVANCE, hanging_man]), "hammer").empty


def test_a_hammer_shape_without_enough_history_for_its_context_is_not_a_hammer():
    assert found(frame([*DECLINE[-3:], HAMMER]), "hammer").empty


def test_a_lower_shadow_under_twice_the_body_is_not_a_hammer():
    assert found(frame([*DECLINE, bar(103.6, 104.05, 103.0, 104.0)]), "hammer").empty


def test_a_long_upper_shadow_disqualifies_a_hammer():
    assert found(frame([*DECLINE, bar(103.6, 105.0, 102.0, 104.0)]), "hammer").empty


def test_a_shooting_star_after_an_advance_fires_on_the_star_bar():
    candles = frame([*ADVANCE, SHOOTING_STAR])
    rows = found(candles, "shooting_star")
    assert rows["ts"].tolist() == [last_ts(candles)]
    assert rows["direction"].tolist() == ["bearish"]
    assert rows["strength"].tolist() == pytest.approx([1.6 / 2.05])


def test_a_shooting_star_shape_after_a_decline_is_not_a_shooting_star():
    inverted_hammer = bar(104.4, 106.0, 103.95, 104.0)
    assert found(frame([*DECLINE, inverted_hammer]), "shooting_star").empty


def test_a_long_lower_shadow_disqualifies_a_shooting_star():
    assert found(frame([*ADVANCE, bar(106.4, 108.0, 105.0, 106.0)]), "shooting_star").empty


# engulfing


def test_a_rising_body_covering_the_previous_falling_body_is_bullish_engulfing():
    candles = frame([bar(101, 101.2, 99.8, 100), bar(99.9, 101.6, 99.7, 101.5)])
    rows = found(candles, "bullish_engulfing")
    assert rows["ts"].tolist() == [last_ts(candles)]
    assert rows["direction"].tolist() == ["bullish"]
    assert rows["strength"].tolist() == pytest.approx([1 - 1 / 1.6])


def test_bullish_engulfing_accepts_an_open_at_the_previous_close():
    candles = frame([bar(101, 101.2, 99.8, 100), bar(100, 101.6, 99.7, 101.5)])
    assert len(found(candles, "bullish_engulfing")) == 1


def test_a_rising_body_that_does_not_reach_the_previous_open_is_not_engulfing():
    candles = frame([bar(101, 101.2, 99.8, 100), bar(99.9, 101.0, 99.7, 100.8)])
    assert found(candles, "bullish_engulfing").empty


def test_two_rising_bars_are_not_bullish_engulfing():
    candles = frame([bar(100, 101.2, 99.8, 101), bar(99.9, 102.6, 99.7, 102.5)])
    assert found(candles, "bullish_engulfing").empty


def test_an_equal_body_does_not_engulf():
    candles = frame([bar(101, 101.2, 99.8, 100), bar(100, 101.2, 99.8, 101)])
    assert found(candles, "bullish_engulfing").empty


def test_a_falling_body_covering_the_previous_rising_body_is_bearish_engulfing():
    candles = frame([bar(100, 101.2, 99.8, 101), bar(101.1, 101.3, 99.4, 99.5)])
    rows = found(candles, "bearish_engulfing")
    assert rows["ts"].tolist() == [last_ts(candles)]
    assert rows["direction"].tolist() == ["bearish"]
    assert rows["strength"].tolist() == pytest.approx([1 - 1 / 1.6])


def test_a_falling_body_that_does_not_reach_the_previous_open_is_not_engulfing():
    candles = frame([bar(100, 101.2, 99.8, 101), bar(101.1, 101.3, 100.0, 100.2)])
    assert found(candles, "bearish_engulfing").empty


# stars


def test_a_morning_star_fires_on_its_third_bar_with_strength_from_the_recovery():
    candles = frame(MORNING_STAR)
    rows = found(candles, "morning_star")
    assert rows["ts"].tolist() == [last_ts(candles)]
    assert rows["direction"].tolist() == ["bullish"]
    assert rows["strength"].tolist() == pytest.approx([0.8])  # closed 4 of the first body's 5 back


def test_a_third_bar_closing_short_of_half_the_first_body_is_no_morning_star():
    candles = frame([*MORNING_STAR[:2], bar(104.7, 106.2, 104.5, 106)])
    assert found(candles, "morning_star").empty


def test_a_large_middle_body_is_no_morning_star():
    candles = frame([MORNING_STAR[0], bar(105, 105.2, 102.8, 103), MORNING_STAR[2]])
    assert found(candles, "morning_star").empty


def test_a_short_first_bar_is_no_morning_star():
    candles = frame([bar(108, 111, 104, 105), *MORNING_STAR[1:]])
    assert found(candles, "morning_star").empty


def test_an_evening_star_fires_on_its_third_bar_with_strength_from_the_drop():
    candles = frame(EVENING_STAR)
    rows = found(candles, "evening_star")
    assert rows["ts"].tolist() == [last_ts(candles)]
    assert rows["direction"].tolist() == ["bearish"]
    assert rows["strength"].tolist() == pytest.approx([0.8])


def test_a_morning_star_is_not_an_evening_star_and_vice_versa():
    assert found(frame(MORNING_STAR), "evening_star").empty
    assert found(frame(EVENING_STAR), "morning_star").empty


def test_a_third_bar_closing_short_of_half_the_first_body_is_no_evening_star():
    candles = frame([*EVENING_STAR[:2], bar(105.3, 105.5, 103.8, 104)])
    assert found(candles, "evening_star").empty


# the detect_patterns contract


def test_plain_trending_bars_form_no_pattern():
    assert detect_patterns(frame([*ADVANCE, *DECLINE])).empty


def test_detections_come_as_rows_with_the_documented_columns_and_bounds():
    candles = frame([*DECLINE, HAMMER, *ADVANCE, SHOOTING_STAR, *MORNING_STAR, bar(100, 101, 99, 100)])
    rows = detect_patterns(candles)
    assert list(rows.columns) == PATTERN_COLUMNS
    assert set(rows["pattern"]) <= set(PATTERNS)
    assert set(rows["direction"]) <= {"bullish", "bearish", "neutral"}
    assert rows["strength"].between(0, 1).all()
    assert rows["ts"].is_monotonic_increasing
    assert {"hammer", "shooting_star", "morning_star", "doji"} <= set(rows["pattern"])


def test_detections_carry_the_candles_utc_timestamps():
    candles = frame(MORNING_STAR)
    rows = detect_patterns(candles)
    assert isinstance(rows["ts"].dtype, pd.DatetimeTZDtype)
    assert str(rows["ts"].dt.tz) == "UTC"


def test_an_empty_frame_yields_an_empty_table_with_the_columns():
    rows = detect_patterns(frame([]))
    assert rows.empty
    assert list(rows.columns) == PATTERN_COLUMNS


def test_candles_without_ohlc_columns_are_refused():
    with pytest.raises(ValueError, match="close"):
        detect_patterns(frame([bar(1, 1, 1, 1)]).drop(columns="close"))


def test_the_pattern_list_names_every_detector():
    assert set(PATTERNS) >= {
        "doji",
        "hammer",
        "shooting_star",
        "bullish_engulfing",
        "bearish_engulfing",
        "morning_star",
        "evening_star",
    }


def test_pattern_params_are_frozen():
    with pytest.raises(FrozenInstanceError):
        PatternParams().doji_body_max = 0.5
