"""Beat's entry class: a stored job comes back with its own timezone or sessions, through every copy beat makes."""

import json
from datetime import UTC, datetime, timedelta

from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder

from services.core.pipeline.job_store import definition
from services.core.pipeline.jobs import ScheduleJSONEncoder, TradingSchedule, parse_job
from services.scheduler.beat import app
from services.scheduler.scheduler import JobEntry


def stored_entry(job) -> JobEntry:
    """The entry as RedBeat's from_key builds it from the hash's definition."""
    decoded = json.loads(json.dumps(definition(job, "operator"), cls=RedBeatJSONEncoder), cls=RedBeatJSONDecoder)
    return JobEntry(app=app, **decoded)


def test_a_stored_cron_keeps_its_zone_and_is_due_by_its_local_clock():
    job = parse_job({"name": "berlin", "task": "ohlc", "scope": {"symbol": "BTC/USD"}, "cron": "0 9 * * *",
                     "timezone": "Europe/Berlin", "priority": 8})
    entry = stored_entry(job)
    assert str(entry.schedule.tz) == "Europe/Berlin"
    assert (entry.task, entry.args, entry.kwargs) == ("pipeline.start", ["ohlc", {"symbol": "BTC/USD"}],
                                                      {"priority": 8})
    assert entry.options == {"priority": 1}
    # 07:00 UTC in winter is 08:00 in Berlin: one hour to go, not two (as in UTC).
    last = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    entry.schedule.nowfun = lambda: last
    assert entry.schedule.remaining_estimate(last).total_seconds() == 3600


def test_the_copy_beat_makes_after_each_run_keeps_zone_job_and_source():
    entry = stored_entry(parse_job({"name": "ny", "task": "all", "cron": "30 16 * * 1-5",
                                    "timezone": "America/New_York"}))
    copied = JobEntry(**dict(entry, last_run_at=datetime.now(UTC), total_run_count=1))  # as ScheduleEntry.next does
    assert str(copied.schedule.tz) == "America/New_York"
    assert (copied.job, copied.source, copied.timezone) == (entry.job, "operator", "America/New_York")


def test_a_trading_job_survives_redbeats_json_and_its_copies_as_its_session_schedule():
    job = parse_job({"name": "tw-quotes", "task": "all", "trading": {"exchange": "XTAI", "every": 900}})
    encoded = json.dumps(definition(job, "operator"), cls=ScheduleJSONEncoder)
    assert json.loads(encoded)["schedule"] == {"__type__": "trading", "exchange": "XTAI", "every": 900}
    entry = JobEntry(app=app, **json.loads(encoded, cls=RedBeatJSONDecoder))
    assert entry.schedule == TradingSchedule(job.trading)
    copied = JobEntry(**dict(entry, last_run_at=datetime.now(UTC), total_run_count=1))
    assert copied.schedule == entry.schedule and copied.job == job.spec()
    # 13:20 in Taipei on 11 February 2026, the last day before the Lunar New Year holiday: the close is next.
    last = datetime(2026, 2, 11, 5, 15, tzinfo=UTC)
    copied.schedule.nowfun = lambda: last + timedelta(minutes=5)
    assert copied.schedule.is_due(last) == (False, 600.0)
    copied.schedule.nowfun = lambda: datetime(2026, 2, 11, 5, 30, 2, tzinfo=UTC)
    due, wait = copied.schedule.is_due(last)
    assert due and wait == (datetime(2026, 2, 23, 1, 0, tzinfo=UTC) - datetime(2026, 2, 11, 5, 30, 2, tzinfo=UTC)
                            ).total_seconds()
