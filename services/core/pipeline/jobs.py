"""Schedule jobs: the periodic-job value, its JSON shape and validation, and what beat sends for one."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import ParseException, crontab, schedule
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.pipeline.runs import KINDS, InvalidRunRequest, validate_request
from services.core.priority import DEFAULT_PRIORITY, broker_priority, check_priority

__all__ = ["Job", "InvalidJob", "MAINTENANCE_TASKS", "RUN_TASK", "MIN_EVERY_S", "MAX_EVERY_S", "NAME_RE", "SOURCES",
           "READ_FIELDS", "is_job_name", "parse_job", "apply_patch", "celery_task", "send_arguments", "job_schedule",
           "schedule_changed", "next_due"]

# Maintenance jobs, by the name a job's `task` gives them, and the Celery task each sends.
# They take no scope; everything else a job may run is a run kind (what the trigger's task= means).
MAINTENANCE_TASKS: dict[str, str] = {
    "repair-failed-windows": "ingest.repair_failed_windows",
    "prune-runs": "pipeline.prune",
    "prune-ledger": "ingest.prune_ledger",
    "find-lost-runs": "pipeline.find_lost",
    "sync-markets": "ingest.sync_markets",
    "maintain-partitions": "pipeline.maintain_partitions",
}
RUN_TASK = "pipeline.start"
# A job firing more often than this is a mistake (or a load test), not a schedule.
MIN_EVERY_S = 10
# A year: anything rarer is a cron's job, and bigger numbers overflow a datetime.
MAX_EVERY_S = 366 * 86400
# Letters, digits and dashes, as in a DNS label; RedBeat keys entries by prefix + name.
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})$")
# RedBeat's lock lives at prefix + "lock": a job of that name would overwrite it.
_RESERVED_NAMES = frozenset({"lock"})
# Where a job's current definition comes from: the code's table, SCHEDULE_OVERRIDES, or an operator.
SOURCES = ("default", "override", "operator")
# What reads add to a job; refused in bodies with a message saying so.
READ_FIELDS = ("next_run_at", "last_run_at", "last_run_id", "source")
_SHOWN = 40


class InvalidJob(ValueError):
    """A job that cannot be accepted; `field` names the offending field (`scope.symbol` for nested ones)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Scope(BaseModel):
    """What a run job narrows its run to: the trigger's scope parameters."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    symbol: str | None = Field(None, max_length=4000, description="a symbol or a comma list of them")
    timeframe: str | None = Field(None, max_length=200, description="a timeframe or a comma list of them")
    since: str | None = Field(None, max_length=64)
    until: str | None = Field(None, max_length=64)
    # Resolved each time the job fires: the range ends when its run starts.
    days: int | None = None
    hours: int | None = None
    bars: int | None = None


class Job(BaseModel):
    """One periodic job: what it runs, when (cron in `timezone`, or every N seconds), and at what priority."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(max_length=63, description="letters a-z, digits and dashes", examples=["btc-hourly"])
    task: str = Field(max_length=64, description="a run kind or a maintenance task", examples=["ohlc"])
    scope: Scope = Field(default_factory=Scope, description="the run's scope, as the trigger's parameters")
    cron: str | None = Field(None, max_length=100, description="minute hour day month weekday",
                             examples=["5 * * * *"])
    every: int | None = Field(None, description=f"interval in seconds, at least {MIN_EVERY_S}")
    timezone: str = Field("UTC", max_length=64, description="the zone the cron is read in")
    enabled: bool = True
    priority: int = Field(DEFAULT_PRIORITY, description="0-9, 9 most urgent")

    def scope_dict(self) -> dict:
        return self.scope.model_dump(exclude_none=True)

    def run_scope(self) -> dict:
        """The scope its runs get, spelled as the trigger's (lists sorted, instants canonical): the same lock."""
        return validate_request(self.task, **self.scope_dict()).scope()

    def spec(self) -> dict:
        """The job as JSON, in the documented field order; only one of cron and every."""
        when = {"cron": self.cron} if self.cron is not None else {"every": self.every}
        return {"name": self.name, "task": self.task, "scope": self.scope_dict(), **when,
                "timezone": self.timezone, "enabled": self.enabled, "priority": self.priority}


def parse_job(data: object, default_timezone: str = "UTC") -> Job:
    """A job from its JSON shape, every field checked; InvalidJob names the first bad one."""
    if not isinstance(data, dict):
        raise InvalidJob("body", f"a job is a JSON object, got {type(data).__name__}")
    for name in READ_FIELDS:
        if name in data:
            raise InvalidJob(name, f"{name} is read-only: it is reported, not set")
    _refuse_nulls(data)
    try:
        job = Job.model_validate({"timezone": default_timezone, **data})
    except ValidationError as exc:
        raise _invalid(exc) from None
    _check(job)
    return job


def apply_patch(job: Job, patch: object, default_timezone: str = "UTC") -> Job:
    """The job with `patch`'s fields changed; name and task stay (a different job is a new job)."""
    if not isinstance(patch, dict):
        raise InvalidJob("body", f"a change is a JSON object, got {type(patch).__name__}")
    if not patch:
        raise InvalidJob("body", "nothing to change: give cron, every, timezone, enabled, scope or priority")
    for name in ("name", "task"):
        if name in patch:
            raise InvalidJob(name, f"a job's {name} cannot be changed; delete the job and add a new one")
    if "cron" in patch and "every" in patch:
        raise InvalidJob("every", "give cron or every, not both")
    merged = job.spec()
    if "cron" in patch or "every" in patch:  # one replaces the other
        merged.pop("cron", None)
        merged.pop("every", None)
    return parse_job({**merged, **patch}, default_timezone)


def _refuse_nulls(data: dict) -> None:
    # No field means "unset" by null: leaving it out does; a null accepted and ignored would hide a mistake.
    for name, value in data.items():
        if value is None:
            shown = str(name)[:_SHOWN]
            raise InvalidJob(shown, f"{shown} cannot be null; leave it out instead")


def is_job_name(name: str) -> bool:
    """Whether `name` can name a job (anything else names none, and must never reach a Redis key)."""
    return bool(NAME_RE.fullmatch(name)) and name not in _RESERVED_NAMES


def _check(job: Job) -> None:
    if not is_job_name(job.name):
        reserved = f" ({job.name!r} is reserved)" if job.name in _RESERVED_NAMES else ""
        raise InvalidJob("name", f"malformed name {job.name[:_SHOWN]!r}{reserved}: use 1-63 characters a-z, 0-9 "
                                 "and '-', starting with a letter or digit")
    if job.task in MAINTENANCE_TASKS:
        if job.scope_dict():
            raise InvalidJob("scope", f"maintenance task {job.task!r} takes no scope")
    elif job.task in KINDS:
        try:
            validate_request(job.task, **job.scope_dict())
        except InvalidRunRequest as exc:
            raise InvalidJob("task" if exc.parameter == "task" else f"scope.{exc.parameter}", str(exc)) from None
    else:
        raise InvalidJob("task", f"unknown task {job.task[:_SHOWN]!r}; run kinds: {', '.join(KINDS)}; "
                                 f"maintenance tasks: {', '.join(MAINTENANCE_TASKS)}")
    if job.cron is not None and job.every is not None:
        raise InvalidJob("every", "give cron or every, not both")
    if job.cron is None and job.every is None:
        raise InvalidJob("cron", "a job needs cron (e.g. \"5 * * * *\") or every (seconds)")
    if job.cron is not None:
        _parse_cron(job.cron)
    elif not MIN_EVERY_S <= job.every <= MAX_EVERY_S:
        raise InvalidJob("every", f"every must be from {MIN_EVERY_S} to {MAX_EVERY_S} seconds, got {job.every}"[:200])
    _zone(job.timezone)
    try:
        check_priority(job.priority)
    except ValueError as exc:
        raise InvalidJob("priority", str(exc)) from None


def _parse_cron(cron: str) -> crontab:
    fields = cron.split()
    if len(fields) != 5:
        raise InvalidJob("cron", f"cron must have 5 fields (minute hour day month weekday), got {cron[:_SHOWN]!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                       day_of_week=day_of_week)
    except (ValueError, IndexError, ParseException) as exc:  # what celery's parser raises for bad fields
        raise InvalidJob("cron", f"bad cron {cron[:_SHOWN]!r}: {exc}") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidJob("timezone", f"unknown timezone {name[:_SHOWN]!r}; use an IANA name, e.g. UTC or "
                                     "Europe/Berlin") from None


def _invalid(exc: ValidationError) -> InvalidJob:
    error = exc.errors()[0]
    # Quoted back at most this far: a body's unknown key may be kilobytes long.
    field = ".".join(str(part) for part in error["loc"])[:_SHOWN] or "body"
    kind = error["type"]
    if kind == "extra_forbidden":
        known = Scope.model_fields if field.startswith("scope.") else Job.model_fields
        return InvalidJob(field, f"unknown field {field!r}; allowed: {', '.join(known)}")
    if kind == "missing":
        return InvalidJob(field, f"{field} is required")
    if kind == "string_too_long":
        return InvalidJob(field, f"{field} is too long: at most {error['ctx']['max_length']} characters")
    wanted = {"string_type": "a string", "int_type": "an integer", "bool_type": "true or false",
              "model_type": "an object", "dict_type": "an object"}.get(kind)
    if wanted:
        return InvalidJob(field, f"{field} must be {wanted}, got {str(error['input'])[:_SHOWN]!r}")
    return InvalidJob(field, f"{field}: {error['msg']}")


def celery_task(job: Job) -> str:
    """The Celery task beat sends for the job."""
    return MAINTENANCE_TASKS.get(job.task, RUN_TASK)


def send_arguments(job: Job) -> tuple[list, dict, dict]:
    """(args, kwargs, options) of the job's message: a run job starts a run at its priority."""
    options = {"priority": broker_priority(job.priority)}
    if job.task in MAINTENANCE_TASKS:
        return [], {}, options
    return [job.task, job.run_scope()], {"priority": job.priority}, options


def job_schedule(job: Job, now: datetime | None = None) -> crontab | schedule:
    """The Celery schedule of the job; a cron is read in the job's own timezone."""
    if job.cron is None:
        return schedule(run_every=timedelta(seconds=job.every), nowfun=(lambda: now) if now else None)
    cron = _parse_cron(job.cron)
    # crontab.tz is a cached property defaulting to the app's zone; set per job, remaining_delta honours it.
    cron.tz = _zone(job.timezone)
    cron.utc_enabled = True
    if now is not None:
        cron.nowfun = lambda: now
    return cron


def schedule_changed(before: Job | None, after: Job) -> bool:
    """Whether the job's clock restarts: new, re-timed, moved to another zone, or re-enabled."""
    if before is None:
        return True
    return ((before.cron, before.every, before.timezone) != (after.cron, after.every, after.timezone)
            or (not before.enabled and after.enabled))


def next_due(job: Job, anchor: datetime, now: datetime) -> datetime | None:
    """When beat next sends the job, counting from `anchor` (its last run, or when its clock restarted);
    None for a disabled job. Never before `now`: an overdue job is due at once."""
    if not job.enabled:
        return None
    if job.cron is None:
        return max(now, anchor + timedelta(seconds=job.every))
    remaining = job_schedule(job, now).remaining_estimate(anchor)
    return max(now, now + remaining)
