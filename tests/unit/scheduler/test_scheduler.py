"""Beat's entry class: a stored job comes back with its own timezone, through every copy beat makes."""

import json
from datetime import UTC, datetime

from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder

from services.core.pipeline.job_store import definition
from services.core.pipeline.jobs import parse_job
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
