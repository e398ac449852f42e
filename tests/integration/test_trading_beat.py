"""RedBeat on a frozen clock: trading jobs in real Redis fire at their sessions' slots, never on holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis

from services.core import keys
from services.core.celery_app import create_celery
from services.core.config import get_settings
from services.core.pipeline import job_store
from services.core.pipeline.jobs import parse_job
from services.scheduler.scheduler import JobScheduler
from tests.utils.broker import queued_messages

pytestmark = pytest.mark.integration

# Beat sleeps until the next entry is due, and no longer than this; ticks in between must fire nothing.
MAX_SLEEP = timedelta(minutes=37)
# How late after its due time a tick wakes up.
LAG = timedelta(seconds=2)


class FrozenBeat:
    """Our RedBeat scheduler on the test Redis, whose clock moves only when the test says."""

    def __init__(self, redis_url: str, start: datetime) -> None:
        self.now, self.sent = start, 0
        self.app = create_celery()
        self.app.conf.update(beat_schedule={}, redbeat_redis_url=redis_url, redbeat_redis_options={},
                             redbeat_key_prefix=keys.REDBEAT_PREFIX, redbeat_lock_key=keys.REDBEAT_LOCK)
        self.app.now = lambda: self.now  # what beat, RedBeat and every entry's schedule read the time from
        self.scheduler = JobScheduler(app=self.app, lazy=True)  # lazy: no start-up reconcile, the test writes
        self.scheduler.lock_key = None  # a single beat in the test: no lock to extend

    def run_until(self, client: redis.Redis, end: datetime) -> list[datetime]:
        """Tick as beat would (waking at the next due entry, or after MAX_SLEEP) until `end`; when each run was sent."""
        fired = []
        while self.now < end:
            self.scheduler.tick()
            if (count := len(queued_messages(client, "pipeline"))) > self.sent:
                fired.extend([self.now] * (count - self.sent))
                self.sent = count
            due = client.zrangebyscore(keys.REDBEAT_SCHEDULE, 0, "+inf", start=0, num=1, withscores=True)
            wake = datetime.fromtimestamp(due[0][1], UTC) + LAG if due else end
            self.now = min(max(wake, self.now + timedelta(seconds=1)), self.now + MAX_SLEEP, end)
        return fired

    def close(self) -> None:
        self.scheduler.close()
        self.app.close()


@pytest.fixture()
def frozen(monkeypatch, redis_url, database_url):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    beats = []

    def start(job: dict, at: datetime) -> FrozenBeat:
        job_store.write_job(client, parse_job(job), "operator", at, restart_clock=True)
        beats.append(beat := FrozenBeat(redis_url, at))
        return beat

    yield client, start
    for beat in beats:
        beat.close()
    client.close()
    get_settings.cache_clear()


def local(instants: list[datetime], zone: str) -> list[str]:
    return [instant.astimezone(ZoneInfo(zone)).strftime("%a %d %H:%M") for instant in instants]


def test_every_half_hour_on_xnys_fires_in_sessions_only_and_stops_at_the_early_close(frozen):
    client, start = frozen
    beat = start({"name": "us-quotes", "task": "all", "trading": {"exchange": "XNYS", "every": 1800}},
                 datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    fired = local(beat.run_until(client, datetime(2026, 12, 1, 0, 0, tzinfo=UTC)), "America/New_York")

    half_hours = [f"{hour:02d}:{minute:02d}" for hour in range(9, 17) for minute in (0, 30)]
    wednesday = [f"Wed 25 {slot}" for slot in half_hours if "09:30" <= slot <= "16:00"]
    friday = [f"Fri 27 {slot}" for slot in half_hours if "09:30" <= slot <= "13:00"]  # closes at 13:00
    monday = [f"Mon 30 {slot}" for slot in half_hours if "09:30" <= slot <= "16:00"]
    assert fired == wednesday + friday + monday  # Thanksgiving and the weekend: nothing
    score = client.zscore(keys.REDBEAT_SCHEDULE, keys.redbeat_entry("us-quotes"))
    assert datetime.fromtimestamp(score, UTC) == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def test_after_close_on_xtai_fires_once_a_trading_day_and_not_through_the_lunar_new_year(frozen):
    client, start = frozen
    beat = start({"name": "tw-close", "task": "all", "trading": {"exchange": "XTAI", "after_close": 1800}},
                 datetime(2026, 2, 9, 0, 0, tzinfo=UTC))
    fired = local(beat.run_until(client, datetime(2026, 2, 25, 0, 0, tzinfo=UTC)), "Asia/Taipei")
    # XTAI closes at 13:30; from Thursday 12 to Friday 20 February it is shut for the Lunar New Year.
    assert fired == ["Mon 09 14:00", "Tue 10 14:00", "Wed 11 14:00", "Mon 23 14:00", "Tue 24 14:00"]
    shown = job_store.read_job(client, "tw-close").view(beat.now)
    assert shown["next_run_at"] == "2026-02-25T06:00:00+00:00"


def test_slots_missed_while_beat_was_down_do_not_fire_after_the_close(frozen):
    client, start = frozen
    beat = start({"name": "us-quotes", "task": "all", "trading": {"exchange": "XNYS", "every": 1800}},
                 datetime(2026, 11, 25, 14, 0, tzinfo=UTC))
    before = beat.run_until(client, datetime(2026, 11, 25, 17, 10, tzinfo=UTC))  # 12:10 ET
    beat.now = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # beat was down from 12:10 to 18:00 ET
    beat.scheduler.tick()
    # The stale 12:30 slot is skipped and the entry waits for Friday's open, not overdue in RedBeat's eyes.
    score = client.zscore(keys.REDBEAT_SCHEDULE, keys.redbeat_entry("us-quotes"))
    assert datetime.fromtimestamp(score, UTC) == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    after = beat.run_until(client, datetime(2026, 11, 28, 0, 0, tzinfo=UTC))
    assert local(before, "America/New_York") == ["Wed 25 09:30", "Wed 25 10:00", "Wed 25 10:30", "Wed 25 11:00",
                                                 "Wed 25 11:30", "Wed 25 12:00"]
    fired = local(after, "America/New_York")
    assert fired[0] == "Fri 27 09:30" and fired[-1] == "Fri 27 13:00" and len(fired) == 8  # none at 18:00 Wed
