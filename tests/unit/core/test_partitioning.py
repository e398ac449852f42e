"""Candle partitions as values: intervals, CANDLE_RETENTION, gaps, what the job plans to create and to drop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.config import load_settings
from services.core.exceptions import ConfigurationError
from services.core.partitioning import INTERVALS, Span, gaps, parse_interval, parse_retention
from services.core.pipeline.job_plan import seed_jobs
from services.core.pipeline.jobs import celery_task
from services.core.store.partitions import (
    Creation,
    Layout,
    Rest,
    expired_partitions,
    partition_name,
    plan_creations,
)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


MONTH = INTERVALS["month"]


@pytest.mark.parametrize(("unit", "instant", "floor", "after"), [
    ("day", at(2026, 3, 1, 23, 59), at(2026, 3, 1), at(2026, 3, 2)),
    ("week", at(2026, 12, 2, 8), at(2026, 11, 30), at(2026, 12, 7)),  # a Wednesday; weeks start on Monday
    ("week", at(2026, 11, 30), at(2026, 11, 30), at(2026, 12, 7)),
    ("month", at(2024, 2, 29, 12), at(2024, 2, 1), at(2024, 3, 1)),
    ("month", at(2026, 12, 31, 23), at(2026, 12, 1), at(2027, 1, 1)),
    ("quarter", at(2026, 8, 15), at(2026, 7, 1), at(2026, 10, 1)),
    ("quarter", at(2026, 12, 15), at(2026, 10, 1), at(2027, 1, 1)),
    ("year", at(2026, 7, 4), at(2026, 1, 1), at(2027, 1, 1)),
])
def test_an_interval_floors_an_instant_and_steps_to_the_next_span(unit, instant, floor, after):
    interval = parse_interval(unit)
    assert interval.floor(instant) == floor and interval.after(floor) == after


def test_an_instant_in_another_zone_is_floored_in_utc():
    from zoneinfo import ZoneInfo

    assert MONTH.floor(datetime(2026, 3, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))) == at(2026, 2, 1)


def test_an_unknown_interval_is_refused_with_the_names_it_takes():
    with pytest.raises(ValueError, match="unknown partition interval 'fortnight': use one of day, week, month"):
        parse_interval("fortnight")


def test_retention_reads_days_per_timeframe_and_empty_keeps_everything():
    assert parse_retention("1m=90d, 5m=365d") == {"1m": timedelta(days=90), "5m": timedelta(days=365)}
    assert parse_retention("") == {} == parse_retention(" , ")


@pytest.mark.parametrize(("text", "message"), [
    ("1m", "is not timeframe=days"),
    ("1w=90d", "malformed timeframe"),
    ("1m=90", "give whole days"),
    ("1m=0d", "give whole days"),
    ("1m=3mo", "give whole days"),
    ("1m=90d,1m=30d", "1m is given twice"),
])
def test_bad_retention_is_refused_naming_the_clause(text, message):
    with pytest.raises(ValueError, match=message):
        parse_retention(text)


def test_settings_refuse_bad_partition_values_naming_the_variable():
    with pytest.raises(ConfigurationError, match=r"CANDLE_RETENTION: .*give whole days"):
        load_settings(candle_retention="1m=90")
    with pytest.raises(ConfigurationError, match=r"CANDLE_PARTITION_INTERVAL: .*unknown partition interval"):
        load_settings(candle_partition_interval="decade")
    with pytest.raises(ConfigurationError, match="CANDLE_PARTITIONS_AHEAD"):
        load_settings(candle_partitions_ahead=0)
    settings = load_settings(candle_partition_interval="Week", candle_retention="1m=7d")
    assert settings.partition_interval == INTERVALS["week"] and settings.retention_by_timeframe == {
        "1m": timedelta(days=7)}


def test_gaps_are_what_no_existing_span_covers():
    jan, feb, mar = at(2026, 1, 1), at(2026, 2, 1), at(2026, 3, 1)
    mid = at(2026, 1, 15)
    assert gaps([Span(jan, feb), Span(feb, mar)], []) == [Span(jan, feb), Span(feb, mar)]
    assert gaps([Span(jan, feb)], [Span(jan, feb)]) == []
    # Spans of an interval used before (say, weeks) are kept; only the uncovered rest is made.
    assert gaps([Span(jan, feb)], [Span(at(2025, 12, 29), at(2026, 1, 5)), Span(mid, at(2026, 1, 22))]) == [
        Span(at(2026, 1, 5), mid), Span(at(2026, 1, 22), feb)]


def test_the_plan_makes_each_timeframe_then_the_spans_ahead_and_those_rows_wait_for():
    layout = Layout("candles", default="candles_default", lists={"1h": "candles_1h"},
                    spans={"1h": [(Span(at(2026, 7, 1), at(2026, 8, 1)), "candles_1h_20260701")]},
                    rests={"1h": [Rest(None, at(2026, 7, 1), "candles_1h_rest_min"),
                                  Rest(at(2026, 8, 1), None, "candles_1h_rest_20260801")]})
    plan = plan_creations(layout, ["1h", "1m"], {"1h": {at(2030, 1, 1)}}, MONTH, 2, at(2026, 7, 10))
    assert plan == [Creation("1m"),
                    Creation("1h", Span(at(2026, 8, 1), at(2026, 9, 1))),
                    Creation("1h", Span(at(2026, 9, 1), at(2026, 10, 1))),
                    Creation("1h", Span(at(2030, 1, 1), at(2030, 2, 1))),
                    Creation("1m", Span(at(2026, 7, 1), at(2026, 8, 1))),
                    Creation("1m", Span(at(2026, 8, 1), at(2026, 9, 1))),
                    Creation("1m", Span(at(2026, 9, 1), at(2026, 10, 1)))]


def test_only_spans_wholly_past_their_timeframes_retention_expire():
    spans = [(Span(at(2026, month, 1), at(2026, month + 1, 1)), f"candles_1m_2026{month:02d}01") for month in (3, 4)]
    layout = Layout("candles", spans={"1m": spans, "1h": [(Span(at(2020, 1, 1), at(2020, 2, 1)), "candles_1h_old")]})
    # 30 days before 1 May 12:00 is 1 April 12:00: March has ended by then, April has not.
    assert expired_partitions(layout, {"1m": timedelta(days=30)}, at(2026, 5, 1, 12)) == ["candles_1m_20260301"]
    assert expired_partitions(layout, {}, at(2030, 1, 1)) == []


def test_partition_names_say_table_timeframe_and_start():
    assert partition_name("candles") == "candles_default"
    assert partition_name("candles", "1m") == "candles_1m"
    assert partition_name("indicator_values", "15m", at(2026, 1, 1)) == "indicator_values_15m_20260101"
    assert partition_name("candles", "1h", at(2026, 1, 1, 6)) == "candles_1h_20260101_0600"
    assert partition_name("candles", "1h", rest=True) == "candles_1h_rest_min"
    assert partition_name("candles", "1h", at(2026, 2, 1), rest=True) == "candles_1h_rest_20260201"


def test_a_rest_partition_holds_the_spans_inside_it():
    rest = Rest(at(2026, 2, 1), None, "candles_1h_rest_20260201")
    assert rest.holds(Span(at(2026, 2, 1), at(2026, 3, 1))) and rest.holds(Span(at(2040, 1, 1), at(2040, 2, 1)))
    assert not rest.holds(Span(at(2026, 1, 1), at(2026, 2, 1)))
    assert Rest(None, at(2026, 2, 1), "x").holds(Span(at(1999, 1, 1), at(1999, 2, 1)))


def test_the_partition_job_is_a_default_maintenance_job():
    planned = seed_jobs({}, "UTC")["partitions-hourly"]
    assert planned.job.task == "maintain-partitions" and celery_task(planned.job) == "pipeline.maintain_partitions"
