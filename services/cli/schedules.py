"""`candleflow schedule …`: list, show, add, change, enable, disable, run, reset and delete schedule jobs."""

from __future__ import annotations

import argparse
import json
import sys

import redis

from services.core.actors import CLI_ACTOR
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.pipeline import schedules
from services.core.pipeline.job_plan import seed_jobs

__all__ = ["register_schedule_commands", "job_table"]

# The scope fields a job added here may name (the trigger's, bar the relative ranges).
_SCOPE_FLAGS = ("exchange", "symbol", "timeframe", "since", "until")

# A job's when in the table, by the field it fires by.
_WHEN = {
    "cron": lambda cron: cron,
    "every": lambda every: f"every {every}s",
    "trading": lambda trading: (f"{trading['exchange']} open, every {trading['every']}s" if "every" in trading
                                else f"{trading['exchange']} close +{trading['after_close']}s"),
}
# Table columns: heading and how to read it off a job.
_COLUMNS = (
    ("NAME", lambda job: job["name"]),
    ("TASK", lambda job: job["task"]),
    ("SCOPE", lambda job: " ".join(f"{k}={v}" for k, v in job["scope"].items()) or "-"),
    ("WHEN", lambda job: next(show(job[field]) for field, show in _WHEN.items() if field in job)),
    ("TIMEZONE", lambda job: job["timezone"]),
    ("ENABLED", lambda job: "yes" if job["enabled"] else "no"),
    ("PRIORITY", lambda job: str(job["priority"])),
    ("NEXT RUN", lambda job: job["next_run_at"] or "-"),
    ("LAST RUN", lambda job: job["last_run_at"] or "-"),
    ("LAST RUN ID", lambda job: job["last_run_id"] or "-"),
    ("SOURCE", lambda job: job["source"]),
)


def job_table(jobs: list[dict]) -> str:
    """Jobs as an aligned text table, one row each."""
    rows = [[heading for heading, _ in _COLUMNS], *([cell(job) for _, cell in _COLUMNS] for job in jobs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_connect_timeout=5, socket_timeout=10)


def _print(args: argparse.Namespace, value: object, table: str) -> None:
    print(json.dumps(value, indent=2) if args.json else table)


def _list(args: argparse.Namespace) -> int:
    jobs = schedules.list_jobs(_client())
    _print(args, jobs, job_table(jobs))
    return 0


def _show(args: argparse.Namespace) -> int:
    job = schedules.show_job(_client(), args.name)
    _print(args, job, job_table([job]))
    return 0


def _add(args: argparse.Namespace) -> int:
    scope = {k: v for k in _SCOPE_FLAGS if (v := getattr(args, k)) is not None}
    spec = {"name": args.name, "task": args.task, "scope": scope, **_timing(args)}
    if args.disabled:
        spec["enabled"] = False
    job = schedules.add_job(_client(), get_engine(), spec, CLI_ACTOR, get_settings().timezone)
    _print(args, job, job_table([job]))
    return 0


def _timing(args: argparse.Namespace) -> dict:
    fields = {"cron": args.cron, "every": args.every, "timezone": args.timezone, "priority": args.priority}
    if args.trading is not None:  # --every is then the session's interval; a --cron beside it is refused by the job
        session = {"exchange": args.trading, "every": fields.pop("every"), "after_close": args.after_close}
        fields["trading"] = {name: value for name, value in session.items() if value is not None}
    elif args.after_close is not None:
        raise ValueError("--after-close goes with --trading MIC: seconds after each of its sessions' close")
    return {name: value for name, value in fields.items() if value is not None}


def _change(args: argparse.Namespace, patch: dict) -> int:
    job = schedules.change_job(_client(), get_engine(), args.name, patch, CLI_ACTOR,
                               get_settings().timezone)
    _print(args, job, job_table([job]))
    return 0


def _set(args: argparse.Namespace) -> int:
    patch = _timing(args)
    if not patch:
        raise ValueError("nothing to change: give --cron, --every, --trading, --priority or --timezone")
    return _change(args, patch)


def _run(args: argparse.Namespace) -> int:
    run_id, created, job = schedules.run_job(_celery(), _client(), args.name)
    answer = {"task_id": run_id, "duplicate": not created, "job": job}
    note = "queued" if created else "already running (not queued again)"
    _print(args, answer, f"{args.name}: run {run_id} {note}")
    return 0


def _celery():
    from services.core.celery_app import app  # deferred: building it reads the settings

    return app


def _reset(args: argparse.Namespace) -> int:
    settings = get_settings()
    seed = seed_jobs(settings.schedule_overrides, settings.timezone)
    job = schedules.reset_job(_client(), get_engine(), args.name, seed, CLI_ACTOR)
    _print(args, job, job_table([job]))
    return 0


def _delete(args: argparse.Namespace) -> int:
    job = schedules.delete_job(_client(), get_engine(), args.name, CLI_ACTOR)
    _print(args, job, f"{args.name}: deleted")
    return 0


def _history(args: argparse.Namespace) -> int:
    changes = schedules.job_history(_client(), get_engine(), args.name, args.limit)
    lines = [f"{c['changed_at']}  {c['actor']:<10} {c['action']:<7} {json.dumps(c['after'])}" for c in changes]
    _print(args, changes, "\n".join(lines) or f"{args.name}: no recorded changes")
    return 0


def _guarded(handler):
    """Unknown jobs and conflicts exit 1 with the message; bad values (ValueError) reach main, which exits 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (schedules.JobNotFound, schedules.JobConflict) as exc:
            print(f"candleflow schedule {args.verb}: {exc}", file=sys.stderr)
            return 1

    return run


def register_schedule_commands(commands: argparse._SubParsersAction) -> None:
    """Add `schedule` and its verbs to the top-level parser; each verb sets `handler`."""
    schedule = commands.add_parser("schedule", help="the live schedule: list, change, run or reset jobs")
    verbs = schedule.add_subparsers(dest="verb", required=True)

    def verb(name: str, handler, help: str, named: bool = True) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help)
        if named:
            parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="JSON instead of a table, for scripts")
        parser.set_defaults(handler=_guarded(handler))
        return parser

    def timing(parser: argparse.ArgumentParser) -> None:
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--cron", help='five fields, e.g. "5 * * * *"')
        when.add_argument("--every", type=int, help="interval in seconds (at least 10); with --trading, while open")
        parser.add_argument("--trading", metavar="MIC", help="run in a stock venue's sessions (e.g. XTAI), with "
                                                             "--every or --after-close; holidays skipped")
        parser.add_argument("--after-close", type=int, metavar="SECONDS",
                            help="with --trading: this long after each session's close (early closes too)")
        parser.add_argument("--priority", type=int, help="0-9, 9 most urgent")
        parser.add_argument("--timezone", help="IANA zone the cron is read in")

    verb("list", _list, "every job with its next and last run", named=False)
    verb("show", _show, "one job")
    add = verb("add", _add, "add a job")
    add.add_argument("--task", required=True, help="a run kind (as the trigger's task=) or a maintenance task")
    for scope in _SCOPE_FLAGS:
        add.add_argument(f"--{scope}", help=f"the run's {scope}")
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    timing(add)
    timing(verb("set", _set, "change a job's cron, interval or trading sessions, priority or timezone"))
    verb("enable", lambda args: _change(args, {"enabled": True}), "switch a job on (next run: its next time)")
    verb("disable", lambda args: _change(args, {"enabled": False}), "switch a job off")
    verb("run", _run, "run a job now (its schedule stays)")
    verb("reset", _reset, "return a job to its default")
    verb("delete", _delete, "remove a job (a default one until reset)")
    history = verb("history", _history, "a job's recorded changes, newest first")
    history.add_argument("--limit", type=int, default=100)
