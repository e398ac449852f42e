"""The schedule beat should hold: the code's default jobs, SCHEDULE_OVERRIDES over them, operator changes over both."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.pipeline.jobs import (
    MAINTENANCE_TASKS,
    RUN_TASK,
    WHEN_FIELDS,
    InvalidJob,
    Job,
    parse_job,
    schedule_changed,
)

__all__ = ["DEFAULT_JOBS", "Planned", "LiveEntry", "ScheduleError", "seed_jobs", "operator_state", "reconcile",
           "plan_writes"]

# name → job (without its name). Crons are read in TIMEZONE; runs start a few minutes past the
# hour so the exchange has closed the previous candle.
DEFAULT_JOBS: dict[str, dict] = {
    "pipeline-all-hourly": {"task": "all", "cron": "5 * * * *"},
    # The exchange's market list (the "stock list" job): new listings, delistings, MARKETS_AUTO_ADD.
    "markets-sync-daily": {"task": "sync-markets", "cron": "0 3 * * *"},
    "repair-failed-windows-daily": {"task": "repair-failed-windows", "cron": "20 3 * * *"},
    "patterns-weekly": {"task": "patterns", "cron": "30 4 * * 1"},
    "levels-weekly": {"task": "levels", "cron": "40 4 * * 1"},
    "prune-daily": {"task": "prune-runs", "cron": "50 3 * * *"},
    "prune-ledger-daily": {"task": "prune-ledger", "cron": "55 3 * * *"},
    # Candle partitions ready CANDLE_PARTITIONS_AHEAD spans ahead, rows moved out of the defaults,
    # CANDLE_RETENTION applied; hourly, so even day-long spans are made long before they are needed.
    "partitions-hourly": {"task": "maintain-partitions", "cron": "35 * * * *"},
    # Runs whose messages vanished (purged queue, flushed Redis) are failed within minutes.
    "find-lost-runs": {"task": "find-lost-runs", "every": 60},
}
# History actions that leave an operator's state; "reset" hands the job back to the seed.
_OPERATOR_ACTIONS = ("add", "change", "delete")


class ScheduleError(ValueError):
    """A SCHEDULE_OVERRIDES entry that cannot be understood; the message names the job and field."""


@dataclass(frozen=True)
class Planned:
    """A job beat should hold, and where its definition comes from (default, override, operator)."""

    job: Job
    source: str


@dataclass(frozen=True)
class LiveEntry:
    """What Redis holds for a job name: our job and source, or None for an entry this code did not write."""

    job: Job | None
    source: str | None


def seed_jobs(overrides: dict | None, timezone: str) -> dict[str, Planned]:
    """The code's default jobs with SCHEDULE_OVERRIDES applied: an override replaces fields, null removes a job."""
    specs = {name: ({"name": name, **job}, "default") for name, job in DEFAULT_JOBS.items()}
    for name, override in (overrides or {}).items():
        if override is None:
            specs.pop(name, None)
            continue
        if not isinstance(override, dict):
            raise ScheduleError(f"SCHEDULE_OVERRIDES job {name!r}: an override must be an object or null")
        override = _modern(override)
        merged = {**specs.get(name, ({"name": name}, None))[0], **override, "name": name}
        if any(when in override for when in WHEN_FIELDS):  # the override's when replaces the default's
            for when in WHEN_FIELDS:
                if when not in override:
                    merged.pop(when, None)
        if "task" not in merged:
            raise ScheduleError(f"SCHEDULE_OVERRIDES job {name!r}: a new job needs a 'task'")
        specs[name] = (merged, "override")
    planned = {}
    for name, (spec, source) in specs.items():
        try:
            planned[name] = Planned(parse_job(spec, timezone), source)
        except InvalidJob as exc:
            raise ScheduleError(f"SCHEDULE_OVERRIDES job {name!r}: {exc.field}: {exc}") from None
    return planned


def _modern(override: dict) -> dict:
    """An override in the job shape; the shape before it (a Celery task name and args) still reads."""
    override = dict(override)
    task, args = override.get("task"), override.pop("args", None)
    if task == RUN_TASK and isinstance(args, list) and args:
        override["task"] = args[0]
        if len(args) > 1 and args[1]:
            override["scope"] = args[1]
    elif task in MAINTENANCE_TASKS.values():
        override["task"] = next(name for name, celery in MAINTENANCE_TASKS.items() if celery == task)
    elif args is not None:
        override["args"] = args  # refused by parse_job, naming the field
    if override.get("kwargs") == {}:
        del override["kwargs"]
    return override


def operator_state(latest: dict[str, tuple[str, dict | None]], timezone: str
                   ) -> tuple[dict[str, Job | None], list[str]]:
    """From each job's latest recorded change: its operator state (None once deleted), and the jobs whose
    recorded state no longer validates (say, a run kind a new release removed), which fall back to the seed."""
    state: dict[str, Job | None] = {}
    problems = []
    for name, (action, after) in latest.items():
        if action not in _OPERATOR_ACTIONS:
            continue
        if action == "delete" or after is None:
            state[name] = None
            continue
        try:
            state[name] = parse_job(after, timezone)
        except InvalidJob as exc:
            problems.append(f"job {name!r}: recorded state no longer valid ({exc.field}: {exc}); using its default")
    return state, problems


def reconcile(seed: dict[str, Planned], operators: dict[str, Job | None]) -> dict[str, Planned]:
    """The schedule to hold: an operator's latest state wins over an override, which wins over the default;
    a job an operator deleted stays deleted until it is reset."""
    plan = dict(seed)
    for name, job in operators.items():
        if job is None:
            plan.pop(name, None)
        else:
            plan[name] = Planned(job, "operator")
    return plan


def plan_writes(plan: dict[str, Planned], live: dict[str, LiveEntry]
                ) -> tuple[list[tuple[Planned, bool]], list[str]]:
    """What to change in Redis to hold `plan`: (job, restart its clock) to write, and names to delete.

    A job Redis already holds as planned is left alone, with its last run; a new or re-timed one
    restarts its clock, so it first runs at its next time from now and never fires a catch-up run.
    """
    writes = []
    for name, planned in sorted(plan.items()):
        current = live.get(name)
        if current is not None and current.job == planned.job and current.source == planned.source:
            continue
        restart = current is None or current.job is None or schedule_changed(current.job, planned.job)
        writes.append((planned, restart))
    deletes = sorted(set(live) - set(plan))
    return writes, deletes

