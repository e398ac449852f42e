"""Schedule jobs: the periodic-job value, its JSON shape and validation, and what beat sends for one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import BaseSchedule, ParseException, crontab, schedstate, schedule
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redbeat.decoder import RedBeatJSONEncoder

from services.core import sessions
from services.core.pipeline.runs import KINDS, InvalidRunRequest, validate_request
from services.core.priority import DEFAULT_PRIORITY, broker_priority, check_priority
from services.core.venues import UnknownVenue, trading_calendar, venue

__all__ = ["Job", "Trading", "InvalidJob", "MAINTENANCE_TASKS", "RUN_TASK", "MIN_EVERY_S", "MAX_EVERY_S",
           "MAX_TRADING_S", "WHEN_FIELDS", "NAME_RE", "SOURCES", "READ_FIELDS", "TradingSchedule",
           "ScheduleJSONEncoder", "is_job_name", "parse_job", "apply_patch", "celery_task", "send_arguments",
           "job_schedule", "schedule_changed", "next_due"]

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
# A trading job's every and after_close: no session lasts a day, and a close + a day is the next session's.
MAX_TRADING_S = sessions.DAY_S
# When a job fires: exactly one of these; giving one (in a change or an override) replaces the others.
WHEN_FIELDS = ("cron", "every", "trading")
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

    exchange: str | None = Field(None, max_length=64, description="a ccxt id or a stock venue's MIC; default EXCHANGE")
    symbol: str | None = Field(None, max_length=4000, description="a symbol or a comma list of them")
    timeframe: str | None = Field(None, max_length=200, description="a timeframe or a comma list of them")
    since: str | None = Field(None, max_length=64)
    until: str | None = Field(None, max_length=64)
    # Resolved each time the job fires: the range ends when its run starts.
    days: int | None = None
    hours: int | None = None
    bars: int | None = None


class Trading(BaseModel):
    """When a trading job fires: every N seconds while the venue is open, or N seconds after each session's close."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    exchange: str = Field(max_length=40, description="a MIC with a trading calendar", examples=["XTAI"])
    every: int | None = Field(None, description="seconds between runs while the venue is open, the first at the open")
    after_close: int | None = Field(None, description="seconds after each session's close, early closes included")

    def spec(self) -> dict:
        return self.model_dump(exclude_none=True)


class Job(BaseModel):
    """One periodic job: what it runs, when (cron in `timezone`, every N seconds, or in a venue's sessions),
    and at what priority."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(max_length=63, description="letters a-z, digits and dashes", examples=["btc-hourly"])
    task: str = Field(max_length=64, description="a run kind or a maintenance task", examples=["ohlc"])
    scope: Scope = Field(default_factory=Scope, description="the run's scope, as the trigger's parameters")
    cron: str | None = Field(None, max_length=100, description="minute hour day month weekday",
                             examples=["5 * * * *"])
    every: int | None = Field(None, description=f"interval in seconds, at least {MIN_EVERY_S}")
    trading: Trading | None = Field(None, description="while a venue trades: its MIC and every or after_close")
    timezone: str = Field("UTC", max_length=64, description="the zone the cron is read in (a trading job: its venue's)")
    enabled: bool = True
    priority: int = Field(DEFAULT_PRIORITY, description="0-9, 9 most urgent")

    def scope_dict(self) -> dict:
        return self.scope.model_dump(exclude_none=True)

    def run_scope(self) -> dict:
        """The scope its runs get, spelled as the trigger's (lists sorted, instants canonical): the same lock."""
        return validate_request(self.task, **self.scope_dict()).scope()

    def when(self) -> str:
        """Which of WHEN_FIELDS the job fires by."""
        return next(name for name in WHEN_FIELDS if getattr(self, name) is not None)

    def spec(self) -> dict:
        """The job as JSON, in the documented field order; only one of cron, every and trading."""
        when = self.when()
        value = self.trading.spec() if when == "trading" else getattr(self, when)
        return {"name": self.name, "task": self.task, "scope": self.scope_dict(), when: value,
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
    if job.trading is not None and job.cron is None and job.every is None:  # beside another when: _check says
        zone = _trading_zone(job.trading)
        if "timezone" not in data:  # a session's times are the venue's: its zone is the job's
            job = job.model_copy(update={"timezone": zone})
        elif job.timezone != zone:
            raise InvalidJob("timezone", f"a trading job runs on {job.trading.exchange}'s clock ({zone}); "
                                         "leave timezone out")
    _check(job)
    return job


def apply_patch(job: Job, patch: object, default_timezone: str = "UTC") -> Job:
    """The job with `patch`'s fields changed; name and task stay (a different job is a new job)."""
    if not isinstance(patch, dict):
        raise InvalidJob("body", f"a change is a JSON object, got {type(patch).__name__}")
    if not patch:
        raise InvalidJob("body", "nothing to change: give cron, every, trading, timezone, enabled, scope or priority")
    for name in ("name", "task"):
        if name in patch:
            raise InvalidJob(name, f"a job's {name} cannot be changed; delete the job and add a new one")
    given = [name for name in WHEN_FIELDS if name in patch]
    if len(given) > 1:
        raise InvalidJob(given[1], f"give one of {', '.join(WHEN_FIELDS)}, not {given[0]} and {given[1]}")
    merged = job.spec()
    if given:  # one replaces the others
        for name in WHEN_FIELDS:
            merged.pop(name, None)
        if "trading" in (given[0], job.when()) and "timezone" not in patch:
            # The zone was (or becomes) the venue's, not a choice: it returns to its default.
            merged.pop("timezone")
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
    given = [name for name in WHEN_FIELDS if getattr(job, name) is not None]
    if len(given) > 1:
        raise InvalidJob(given[1], f"give one of {', '.join(WHEN_FIELDS)}, not {given[0]} and {given[1]}")
    if not given:
        raise InvalidJob("cron", "a job needs cron (e.g. \"5 * * * *\"), every (seconds) or trading "
                                 "(e.g. {\"exchange\": \"XNYS\", \"every\": 900})")
    if job.cron is not None:
        _parse_cron(job.cron)
    elif job.every is not None:
        _check_seconds("every", job.every, MIN_EVERY_S, MAX_EVERY_S)
    _zone(job.timezone)
    try:
        check_priority(job.priority)
    except ValueError as exc:
        raise InvalidJob("priority", str(exc)) from None


def _check_seconds(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InvalidJob(field, f"{field} must be from {low} to {high} seconds, got {value}"[:200])


def _trading_zone(trading: Trading) -> str:
    """The venue's zone, once `trading` is found sound: a known MIC, and one of every and after_close."""
    try:
        kind = venue(trading.exchange)
    except UnknownVenue as exc:
        raise InvalidJob("trading.exchange", str(exc)) from None
    if not kind.has_calendar:
        raise InvalidJob("trading.exchange", f"{trading.exchange} is a ccxt exchange and trades around the clock: "
                                             "use every or cron instead of trading")
    given = [name for name in ("every", "after_close") if getattr(trading, name) is not None]
    if len(given) != 1:
        raise InvalidJob("trading.after_close" if given else "trading.every",
                         "trading takes one of every (seconds, while open) and after_close (seconds after "
                         "each close)" + (", not both" if given else ""))
    if trading.every is not None:
        _check_seconds("trading.every", trading.every, MIN_EVERY_S, MAX_TRADING_S)
    else:
        _check_seconds("trading.after_close", trading.after_close, 0, MAX_TRADING_S)
    return str(trading_calendar(trading.exchange).tz)


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
        known = {"scope": Scope, "trading": Trading}.get(field.partition(".")[0], Job).model_fields
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


class TradingSchedule(BaseSchedule):
    """Celery's schedule of a trading job: due at the slots its venue's sessions give (sessions.py finds them).

    A holiday has no slots, a half day none after its early close. A slot missed while beat was
    down fires late only while it is still current: within `every` seconds of its time (so never
    after the session closed), or, after a close, until the next session opens; otherwise the job
    waits for its next slot.
    """

    def __init__(self, trading: Trading, nowfun=None, app=None) -> None:
        super().__init__(nowfun=nowfun, app=app)
        self.trading = trading

    def next_fire(self, after: datetime) -> datetime | None:
        """The job's first slot after `after`; None past the calendar's last session."""
        calendar = sessions.venue_sessions(self.trading.exchange)
        if self.trading.every is not None:
            fire = sessions.next_every_slot(calendar, _aware(after).timestamp(), self.trading.every)
        else:
            fire = sessions.next_after_close(calendar, _aware(after).timestamp(), self.trading.after_close)
        return None if fire is None else datetime.fromtimestamp(fire, UTC)

    def due_slot(self, last_run_at: datetime, now: datetime) -> datetime | None:
        """The slot the job is due at next, seen at `now`: its first after the last run that is still current."""
        now = _aware(now)
        if self.trading.every is not None:
            current_since = now - timedelta(seconds=self.trading.every)
        else:
            opened = sessions.last_open(sessions.venue_sessions(self.trading.exchange), now.timestamp())
            current_since = datetime.fromtimestamp(opened if opened is not None else 0, UTC)
        return self.next_fire(max(_aware(last_run_at), current_since))

    def remaining_estimate(self, last_run_at: datetime) -> timedelta | None:
        # From now, as crontab's is: RedBeat and next_due add it to the run that just happened, or to now.
        now = self.now()
        fire = self.due_slot(last_run_at, now)
        return None if fire is None else fire - now

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now()
        fire = self.due_slot(last_run_at, now)
        due = fire is not None and fire <= now
        following = self.next_fire(now) if due else fire
        return schedstate(due, None if following is None else (following - now).total_seconds())

    def json(self) -> dict:
        """The schedule in RedBeat's JSON, a `__type__` its decoder hands back as a dict for JobEntry to rebuild."""
        return {"__type__": "trading", **self.trading.spec()}

    def __repr__(self) -> str:
        return f"<trading {self.trading.spec()}>"

    def __reduce__(self):
        return self.__class__, (self.trading, self.nowfun)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TradingSchedule):
            return self.trading == other.trading and self.nowfun == other.nowfun
        return NotImplemented


def _aware(instant: datetime) -> datetime:
    # Naive instants as UTC, as Celery reads them.
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


class ScheduleJSONEncoder(RedBeatJSONEncoder):
    """RedBeat's encoder, also writing a trading job's schedule (RedBeat's decoder keeps it as a dict)."""

    def default(self, obj):
        if isinstance(obj, TradingSchedule):
            return obj.json()
        return super().default(obj)


def job_schedule(job: Job, now: datetime | None = None) -> crontab | schedule | TradingSchedule:
    """The Celery schedule of the job; a cron is read in the job's own timezone, sessions in the venue's."""
    nowfun = (lambda: now) if now else None
    if job.trading is not None:
        return TradingSchedule(job.trading, nowfun=nowfun)
    if job.cron is None:
        return schedule(run_every=timedelta(seconds=job.every), nowfun=nowfun)
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
    return ((before.cron, before.every, before.trading, before.timezone)
            != (after.cron, after.every, after.trading, after.timezone)
            or (not before.enabled and after.enabled))


def next_due(job: Job, anchor: datetime, now: datetime) -> datetime | None:
    """When beat next sends the job, counting from `anchor` (its last run, or when its clock restarted);
    None for a disabled job, and for a trading job past its calendar's last session. Never before `now`:
    an overdue job is due at once."""
    if not job.enabled:
        return None
    if job.every is not None:
        return max(now, anchor + timedelta(seconds=job.every))
    remaining = job_schedule(job, now).remaining_estimate(anchor)
    return None if remaining is None else max(now, now + remaining)
