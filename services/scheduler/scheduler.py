"""RedBeat, taught candleflow's jobs: entries keep their zone and trading sessions, beat start reconciles, runs are
remembered."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import redis
from celery.schedules import crontab
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, get_redis

from services.core.config import get_settings
from services.core.db import get_engine
from services.core.pipeline import job_store
from services.core.pipeline.job_plan import seed_jobs
from services.core.pipeline.jobs import Trading, TradingSchedule
from services.core.pipeline.schedules import reconcile_schedule

__all__ = ["JobEntry", "JobScheduler"]

log = logging.getLogger(__name__)

# How soon beat tries again while Redis is away: its lock (BEAT_LOCK_TIMEOUT_S, 15 s at least) must be
# renewed well within its lifetime once Redis is back.
REDIS_AWAY_RETRY_S = 1.0


class JobEntry(RedBeatSchedulerEntry):
    """A RedBeat entry whose definition also carries the job's timezone, the job itself and its source."""

    def __init__(self, name=None, task=None, schedule=None, args=None, kwargs=None, enabled=True, options=None,
                 timezone=None, job=None, source=None, **clsargs):
        if isinstance(schedule, dict) and schedule.get("__type__") == "trading":
            # RedBeat's decoder hands a type it does not know back as the dict ScheduleJSONEncoder wrote.
            schedule = TradingSchedule(Trading.model_validate({k: v for k, v in schedule.items() if k != "__type__"}))
        if timezone and isinstance(schedule, crontab):
            # RedBeat's crontab encoding drops the zone; the definition carries it beside.
            schedule.tz = ZoneInfo(timezone)
        super().__init__(name=name, task=task, schedule=schedule, args=args, kwargs=kwargs, enabled=enabled,
                         options=options, **clsargs)
        self.timezone, self.job, self.source = timezone, job, source

    @property
    def due_at(self):
        if not isinstance(self.schedule, TradingSchedule) or self.last_run_at is None:
            return super().due_at
        # RedBeat adds a time remaining from now to the last run, right only just after a run; a trading
        # job's next slot is an instant of its own, and one skipped as stale must not look overdue.
        now = self.default_now()
        fire = self.schedule.due_slot(self.last_run_at, now)
        return None if fire is None else max(fire, now)

    def is_due(self):
        due, wait = super().is_due()
        if not due and self.enabled and isinstance(self.schedule, TradingSchedule):
            # A slot skipped as stale (beat was down past it) leaves the entry's score in the past, where
            # every tick would load it and BeatJobOverdue would see it: move it to the slot it waits for.
            get_redis(self.app).zadd(self.app.redbeat_conf.schedule_key, {self.key: self.score})
        return due, wait


class JobScheduler(RedBeatScheduler):
    """Beat's scheduler: the live schedule is RedBeat's, rebuilt from seed and history at start, never overwritten."""

    Entry = JobEntry

    def setup_schedule(self):
        # Instead of RedBeat's static entries, which would overwrite every operator edit at each start.
        settings = get_settings()
        seed = seed_jobs(settings.schedule_overrides, settings.timezone)
        reconcile_schedule(get_redis(self.app), get_engine(), seed, settings.timezone)

    def tick(self, *args, **kwargs):
        """RedBeat's tick, riding out a Redis outage instead of exiting: beat waits and tries again, and a
        lock that expired meanwhile is taken back, or left to the beat that took it (standby until it is free)."""
        try:
            if self.lock_key and self.lock is not None and not self.lock.owned():
                if not self.lock.acquire(blocking=False):
                    return self.lock_timeout / 3  # another beat drives the schedule now
                log.warning("beat: took the schedule lock back after losing it to a Redis outage")
            return super().tick(*args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            log.warning("beat: Redis unavailable (%s); trying again in %g s", exc, REDIS_AWAY_RETRY_S)
            return REDIS_AWAY_RETRY_S

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        if result is not None and getattr(result, "id", None):
            # A beat-started run's id is its message id: the job shows it as last_run_id.
            job_store.record_run(get_redis(self.app), entry.name, result.id, datetime.now(UTC))
        return result
