"""The table of periodic jobs, and how configuration overrides it."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

__all__ = ["DEFAULT_JOBS", "build_schedule", "ScheduleError"]

# name → task, cron (m h dom mon dow, in TIMEZONE) and arguments. Runs start a few
# minutes past the hour so the exchange has closed the previous candle.
DEFAULT_JOBS: dict[str, dict] = {
    "pipeline-all-hourly": {"task": "pipeline.start", "cron": "5 * * * *", "args": ["all", {}]},
    "repair-failed-windows-daily": {"task": "ingest.repair_failed_windows", "cron": "20 3 * * *", "args": []},
    "patterns-weekly": {"task": "pipeline.start", "cron": "30 4 * * 1", "args": ["patterns", {}]},
    "levels-weekly": {"task": "pipeline.start", "cron": "40 4 * * 1", "args": ["levels", {}]},
    "prune-daily": {"task": "pipeline.prune", "cron": "50 3 * * *", "args": []},
    # Runs whose messages vanished (purged queue, flushed Redis) are failed within minutes.
    "find-lost-runs": {"task": "pipeline.find_lost", "every": 60, "args": []},
    "prune-ledger-daily": {"task": "ingest.prune_ledger", "cron": "55 3 * * *", "args": []},
}


class ScheduleError(ValueError):
    """A schedule override that cannot be understood; the message names the job."""


def _when(name: str, job: dict):
    if "every" in job:
        seconds = job["every"]
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ScheduleError(f"job {name!r}: 'every' must be a positive number of seconds")
        return timedelta(seconds=seconds)
    fields = str(job.get("cron", "")).split()
    if len(fields) != 5:
        raise ScheduleError(f"job {name!r}: cron must have 5 fields (minute hour day month weekday), "
                            f"got {job.get('cron')!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                       day_of_week=day_of_week)
    except ValueError as exc:
        raise ScheduleError(f"job {name!r}: bad cron {job['cron']!r}: {exc}") from None


def build_schedule(overrides: dict | None = None) -> dict:
    """Celery's beat_schedule from the defaults; an override replaces fields, null disables a job."""
    jobs = {name: dict(job) for name, job in DEFAULT_JOBS.items()}
    for name, override in (overrides or {}).items():
        if override is None:
            jobs.pop(name, None)
            continue
        if not isinstance(override, dict):
            raise ScheduleError(f"job {name!r}: override must be an object or null")
        merged = {**jobs.get(name, {}), **override}
        if "every" in override:
            merged.pop("cron", None)
        if "task" not in merged:
            raise ScheduleError(f"job {name!r}: a new job needs a 'task'")
        jobs[name] = merged
    return {
        name: {"task": job["task"], "schedule": _when(name, job), "args": tuple(job.get("args", ())),
               "kwargs": job.get("kwargs", {})}
        for name, job in jobs.items()
    }
