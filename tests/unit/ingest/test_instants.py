"""Epoch milliseconds and the timestamptz values ingest stores convert both ways without loss."""

from datetime import UTC, datetime, timedelta, timezone

from services.core.timeparse import datetime_to_ms, ms_to_datetime


def test_milliseconds_become_an_aware_utc_datetime():
    assert ms_to_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert ms_to_datetime(1_704_067_200_001) == datetime(2024, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
    assert ms_to_datetime(5).tzinfo is UTC


def test_every_millisecond_survives_the_round_trip_even_far_from_the_epoch():
    # Dividing by 1000 into a float loses the last millisecond around year 4900; this must not.
    for ms in (0, 1, 999, 1_704_067_200_001, 92_615_592_914_705, 253_402_300_799_999):
        assert datetime_to_ms(ms_to_datetime(ms)) == ms
    assert ms_to_datetime(92_615_592_914_705).microsecond == 705_000


def test_a_datetime_in_another_zone_converts_by_its_instant_and_sub_milliseconds_are_floored():
    plus_two = timezone(timedelta(hours=2))
    assert datetime_to_ms(datetime(1970, 1, 1, 2, tzinfo=plus_two)) == 0
    assert datetime_to_ms(datetime(2024, 1, 1, 0, 0, 0, 1999, tzinfo=UTC)) == 1_704_067_200_001
