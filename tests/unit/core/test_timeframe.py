"""A Timeframe is parsed once from its ccxt name and then behaves as a plain value."""

import dataclasses

import pytest

from services.core.timeframe import Timeframe


@pytest.mark.parametrize(("text", "ms"), [("1m", 60_000), ("15m", 900_000), ("1h", 3_600_000),
                                           ("4h", 14_400_000), ("1d", 86_400_000), ("90m", 5_400_000)])
def test_a_name_parses_to_its_length_in_milliseconds_and_seconds(text, ms):
    tf = Timeframe.parse(text)
    assert (tf.name, tf.ms, tf.seconds) == (text, ms, ms // 1000)


@pytest.mark.parametrize("text", ["0m", "0h", "00d", "1w", "1M", "1y", "1s", "h", "1", "", " 1h", "1h ", "1h\n",
                                  "1H", "-1h", "1.5h", None, 60])
def test_zero_weeks_months_and_garbage_are_refused_with_the_usual_message(text):
    with pytest.raises(ValueError, match=r"malformed timeframe .*expected minutes, hours or days, e\.g\. 1m, 15m"):
        Timeframe.parse(text)


def test_building_one_directly_derives_the_length_and_refuses_what_parse_refuses():
    assert Timeframe("4h") == Timeframe.parse("4h") and Timeframe("4h").ms == 14_400_000
    with pytest.raises(ValueError, match="malformed timeframe '1w'"):
        Timeframe("1w")
    with pytest.raises(TypeError):
        Timeframe("1h", 5)  # the length is never taken on trust


def test_it_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timeframe.parse("1h").ms = 1


def test_equal_names_are_equal_and_hash_alike_so_they_work_as_dict_keys():
    counts = {Timeframe.parse("1h"): 1}
    counts[Timeframe.parse("1h")] += 1
    assert counts == {Timeframe.parse("1h"): 2}
    assert len({Timeframe.parse("1h"), Timeframe.parse("1h"), Timeframe.parse("4h")}) == 2


def test_sixty_minutes_is_not_the_same_timeframe_as_one_hour():
    # Same length, different name: ccxt and the candles table tell them apart, so must we.
    assert Timeframe.parse("60m").ms == Timeframe.parse("1h").ms
    assert Timeframe.parse("60m") != Timeframe.parse("1h")


def test_str_is_the_name_so_messages_and_sql_parameters_read_as_before():
    tf = Timeframe.parse("15m")
    assert str(tf) == "15m" and f"{tf} candles" == "15m candles"


@pytest.mark.parametrize("text", ["01h", "001m"])
def test_a_leading_zero_is_not_a_second_name_for_the_same_timeframe(text):
    with pytest.raises(ValueError, match="malformed timeframe"):
        Timeframe.parse(text)


@pytest.mark.parametrize("text", ["8d", "169h", "10081m", "999999999999d"])
def test_bars_longer_than_a_week_are_refused_without_echoing_the_whole_value(text):
    with pytest.raises(ValueError, match="too long: at most 7d") as refused:
        Timeframe.parse(text)
    assert len(str(refused.value)) < 60


def test_the_longest_accepted_names_fit_the_database_column():
    assert [Timeframe.parse(text).ms for text in ("7d", "168h", "10080m")] == [604_800_000] * 3
    assert max(len(name) for name in ("7d", "168h", "10080m")) <= 8
