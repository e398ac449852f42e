"""Pipeline runs: the kinds an operator can ask for, submission with de-duplication, status."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from celery import Celery
from sqlalchemy import Engine

from services.core import keys
from services.core.config import get_settings
from services.core.imports import RUN_KIND as IMPORT_KIND
from services.core.pipeline.records import insert_scheduled_run, read_run, read_stage_progress
from services.core.pipeline.scopes import RELATIVE, RELATIVE_LIMITS, ScopeError, canonical_symbols, canonical_timeframes
from services.core.pipeline.stages import KIND_STAGES, KINDS, STAGES
from services.core.priority import DEFAULT_PRIORITY, broker_priority
from services.core.timeparse import canonical_instant, iso_utc, parse_instant_ms
from services.core.venues import UnknownVenue, venue

__all__ = ["KINDS", "RUN_KINDS", "KIND_STAGES", "RUN_STATES", "FINISHED_STATES", "SCOPE_FIELDS", "MAX_DELAY_S",
           "RunRequest", "InvalidRunRequest", "validate_request", "start_time", "claim_run", "submit_run",
           "schedule_run", "request_of", "release_run", "queued_run", "run_status", "run_summary",
           "cancelled_outcome", "stage_task_id"]

# Every kind a run's row can have: the kinds one may start, and imports (started by a file, not a trigger).
RUN_KINDS = (*KINDS, IMPORT_KIND)
# SCHEDULED: delayed, its start not yet due; PENDING: queued; STARTED: its stages are running.
RUN_STATES = ("SCHEDULED", "PENDING", "STARTED", "SUCCESS", "PARTIAL", "FAILURE", "CANCELLED")
FINISHED_STATES = ("SUCCESS", "PARTIAL", "FAILURE", "CANCELLED")
# The longest delay a run may be given. Redis hands a held ETA message to another worker after
# every visibility timeout, so each extra hour of delay is a few more copies held in memory
# (the run_dispatched guard keeps them from fanning out twice); a day keeps that small.
MAX_DELAY_S = 86_400
# The longest text a parameter may hold: a list of symbols is longer than one instant.
_LONGEST_VALUE = {"task": 64, "exchange": 64, "symbol": 4000, "timeframe": 200, "since": 64, "until": 64,
                  "days": 64, "hours": 64, "bars": 64}
# Scope fields a kind may require, in the order they are asked for, with an example of each.
_EXAMPLES = {"symbol": "BASE/QUOTE", "since": "<ISO date> (or days=N, hours=N, bars=N)"}
# The scope's fields in their documented order: what a run request, a job's scope and the trigger share.
SCOPE_FIELDS = ("exchange", "symbol", "timeframe", "since", "until", *RELATIVE)


class InvalidRunRequest(ValueError):
    """A run request that names a bad parameter; `parameter` says which."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class RunRequest:
    """What was asked: a kind, optionally narrowed to an exchange other than EXCHANGE, symbols and timeframes
    (comma lists), and a range: since/until, or the last days, hours or bars before the run starts."""

    kind: str
    symbol: str | None = None
    timeframe: str | None = None
    since: str | None = None
    until: str | None = None
    days: int | None = None
    hours: int | None = None
    bars: int | None = None
    exchange: str | None = None  # None: the configured EXCHANGE

    def scope(self) -> dict:
        return {name: getattr(self, name) for name in SCOPE_FIELDS if getattr(self, name) is not None}

    def dedup_key(self) -> str:
        return keys.run_lock(self.kind, self.scope())


def _check_length(name: str, value: object) -> None:
    # Refused before any message quotes it back: an error must not echo kilobytes.
    if isinstance(value, str) and len(value) > _LONGEST_VALUE[name]:
        raise InvalidRunRequest(name, f"{name} is {len(value)} characters long; at most {_LONGEST_VALUE[name]}")


def _relative(name: str, value: object) -> int:
    limit = RELATIVE_LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidRunRequest(name, f"{name} must be a whole number from 1 to {limit}, got {str(value)[:40]!r}")
    return value


def _exchange(value: str, default: str, stages: list) -> str | None:
    """The run's exchange as its scope names it: None for the configured EXCHANGE (one lock for both spellings)."""
    try:
        kind = venue(value)
    except UnknownVenue as exc:
        raise InvalidRunRequest("exchange", str(exc)) from None
    if value == default:
        return None
    if all(stage.fetches for stage in stages):
        # Only EXCHANGE is fetched from; a stock venue is fed by imports, another ccxt exchange by nothing here.
        why = (f"{value} is a stock venue, fed by imports (candleflow import)" if not kind.fetches
               else f"this deployment does not fetch from {value}")
        raise InvalidRunRequest("exchange", f"a {stages[0].name} run fetches from the configured exchange "
                                            f"({default}); {why}. Run indicators, signals or all on {value} instead")
    return value


def validate_request(kind: str | None, *, exchange: str | None = None, symbol: str | None = None,
                     timeframe: str | None = None, since: str | None = None, until: str | None = None,
                     days: int | None = None, hours: int | None = None, bars: int | None = None) -> RunRequest:
    """Check every parameter; InvalidRunRequest names the first bad one. No parameter is accepted and ignored:
    one a kind's stages do not use is refused."""
    given = {"task": kind, "exchange": exchange, "symbol": symbol, "timeframe": timeframe, "since": since,
             "until": until, "days": days, "hours": hours, "bars": bars}
    for name, value in given.items():
        _check_length(name, value)
    if kind not in KIND_STAGES:
        raise InvalidRunRequest("task", f"unknown task type {kind!r}; valid types: {', '.join(KINDS)}")
    stages = [STAGES[name] for name in KIND_STAGES[kind]]
    default = get_settings().exchange
    exchange = None if exchange is None else _exchange(exchange, default, stages)
    try:
        symbol = None if symbol is None else canonical_symbols(symbol, exchange or default)
        timeframe = None if timeframe is None else canonical_timeframes(timeframe)
    except ScopeError as exc:
        raise InvalidRunRequest(exc.parameter, str(exc)) from None
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            try:
                parse_instant_ms(value)
            except ValueError as exc:
                raise InvalidRunRequest(name, str(exc)) from None
    relative = {name: _relative(name, value) for name, value in (("days", days), ("hours", hours), ("bars", bars))
                if value is not None}
    starts = [name for name in ("since", *relative) if given[name] is not None]
    if len(starts) > 1:
        raise InvalidRunRequest(starts[1], f"give one start: since, days, hours or bars (got {' and '.join(starts)})")
    if bars is not None and exchange is not None and venue(exchange).has_calendar:
        # bars= counts back whole timeframes of wall-clock time; a venue's bars skip nights and holidays.
        raise InvalidRunRequest("bars", f"bars= counts wall-clock bars, not {exchange}'s sessions; give since= or "
                                        "days= on a stock venue")
    if relative and until is not None:
        raise InvalidRunRequest("until", f"{starts[0]}= is a range ending now; until goes with since only")
    accepted = frozenset().union(*(stage.accepts for stage in stages))
    for name in ("since", "until", *RELATIVE):
        # A relative range is a start: a kind takes it wherever it takes since.
        if given[name] is not None and ("since" if name in RELATIVE else name) not in accepted:
            takes = f"it takes {' and '.join(sorted(accepted))}" if accepted else "it takes no range"
            raise InvalidRunRequest(name, f"a {kind!r} run does not use {name}; {takes}")
    required = frozenset().union(*(stage.requires for stage in stages))
    present = {name for name, value in given.items() if value is not None} | ({"since"} if starts else set())
    missing = [name for name in _EXAMPLES if name in required and name not in present]
    if missing:
        raise InvalidRunRequest(missing[0], f"a {kind} run needs {missing[0]}={_EXAMPLES[missing[0]]}")
    if since is not None and until is not None and parse_instant_ms(until) <= parse_instant_ms(since):
        raise InvalidRunRequest("until", "until must be after since")
    # De-duplication is by effect: every spelling of an instant, every order of a list, locks (and runs) as one.
    return RunRequest(kind, symbol, timeframe, *(None if value is None else canonical_instant(value)
                                                 for value in (since, until)), **relative, exchange=exchange)


def start_time(countdown: int | None, eta: datetime | None, now: datetime) -> datetime | None:
    """When a delayed run starts: `countdown` seconds from `now` or at `eta` (future, within MAX_DELAY_S);
    None to start at once. InvalidRunRequest names the parameter at fault."""
    if countdown is not None and eta is not None:
        raise InvalidRunRequest("eta", "give countdown or eta, not both")
    if countdown is not None:
        if isinstance(countdown, bool) or not isinstance(countdown, int) or not 1 <= countdown <= MAX_DELAY_S:
            raise InvalidRunRequest("countdown", f"countdown must be whole seconds from 1 to {MAX_DELAY_S}, "
                                                 f"got {countdown!r}")
        return now + timedelta(seconds=countdown)
    if eta is not None:
        if eta <= now:
            raise InvalidRunRequest("eta", f"eta {eta.isoformat()} is not in the future (now {now.isoformat()})")
        if eta > now + timedelta(seconds=MAX_DELAY_S):
            raise InvalidRunRequest("eta", f"eta {eta.isoformat()} is more than {MAX_DELAY_S // 3600} h ahead")
        return eta
    return None


def stage_task_id(run_id: str, batch: int, stage: str) -> str:
    """The Celery task id of one batch's stage: known without asking the broker, so a cancel can revoke it."""
    return f"{run_id}.{batch}.{stage}"


def claim_run(client: redis.Redis, request: RunRequest, run_id: str) -> str | None:
    """Take the lock for this kind and scope; returns the id of the run already holding it, if any."""
    key = request.dedup_key()
    while not client.set(key, run_id, nx=True, ex=keys.RUN_LOCK_TTL_S):
        holder = client.get(key)
        if holder is not None:  # else it expired between our SET and GET: try again
            return None if holder.decode() == run_id else holder.decode()
    return None


def submit_run(celery: Celery, client: redis.Redis, request: RunRequest,
               priority: int = DEFAULT_PRIORITY) -> tuple[str, bool]:
    """Queue a run by task name at `priority` (0-9, 9 most urgent); returns (run id, True) or
    (the running duplicate's id, False)."""
    run_id = str(uuid.uuid4())
    running = claim_run(client, request, run_id)
    if running is not None:
        return running, False
    record = keys.run_record(run_id)
    try:  # the record's write too: a Redis at its maxmemory may take the lock and refuse the next write
        client.set(record, json.dumps({"kind": request.kind, "scope": request.scope(), "priority": priority}),
                   ex=keys.RUN_RECORD_TTL_S)
        celery.send_task("pipeline.start", args=[request.kind, request.scope()], kwargs={"priority": priority},
                         task_id=run_id, priority=broker_priority(priority))
    except Exception:
        # Not queued: neither a lock nor a PENDING record may outlive the failure (the lock first: a
        # stale one would turn the next identical request into a "duplicate" of nothing for 6 h).
        release_run(client, request.kind, request.scope(), run_id)
        client.delete(record)
        raise
    return run_id, True


def schedule_run(celery: Celery, engine: Engine, request: RunRequest, start_at: datetime,
                 priority: int = DEFAULT_PRIORITY) -> str:
    """A run that starts at `start_at`: SCHEDULED in Postgres at once, its start message held until then.

    It takes the de-duplication lock only when it starts (an identical run going then wins).
    """
    run_id = str(uuid.uuid4())
    with engine.begin() as conn:  # the row goes if the message could not be sent
        insert_scheduled_run(conn, run_id, request.kind, request.scope(), priority, start_at)
        celery.send_task("pipeline.start", args=[request.kind, request.scope()], kwargs={"priority": priority},
                         task_id=run_id, priority=broker_priority(priority), eta=start_at)
    return run_id


def request_of(kind: str, scope: dict) -> RunRequest:
    """The request a stored run kind and scope stand for."""
    return RunRequest(kind, **{name: scope.get(name) for name in SCOPE_FIELDS})


def release_run(client: redis.Redis, kind: str, scope: dict, run_id: str) -> None:
    """Drop the de-duplication lock if this run still holds it."""
    key = request_of(kind, scope).dedup_key()
    if (client.get(key) or b"").decode() == run_id:
        client.delete(key)


def queued_run(client: redis.Redis, run_id: str) -> dict | None:
    """A queued run's Redis record (kind, scope, priority) before its row exists; None if there is none."""
    queued = client.get(keys.run_record(run_id))
    if queued is None:
        return None
    return {"priority": DEFAULT_PRIORITY, **json.loads(queued)}


def run_status(engine: Engine, client: redis.Redis, run_id: str) -> dict | None:
    """The run's state and per-stage results; None when no such run was ever submitted."""
    with engine.connect() as conn:
        row = read_run(conn, run_id)
    if row is None:
        record = queued_run(client, run_id)
        if record is None:
            return None
        return {"task_id": run_id, "task_type": record["kind"], "scope": record["scope"], "status": "PENDING",
                "ready": False, "successful": False, "result": [], "error": None, "priority": record["priority"]}
    state = row["state"]
    errors = row["errors"] or []
    stages = row["stages"] or {}
    if not stages:  # still running, or cancelled: the progress rows so far
        with engine.connect() as conn:
            stages = read_stage_progress(conn, run_id)
    status = {
        "task_id": run_id, "task_type": row["kind"], "scope": row["scope"], "status": state,
        "ready": state in FINISHED_STATES, "successful": state == "SUCCESS",
        "result": _stage_entries(stages),
        "error": "; ".join(f"{e.get('instrument')}: {e.get('stage')}: {e.get('error')}" for e in errors) or None,
        "errors": errors, "priority": row["priority"],
        "created_at": iso_utc(row["created_at"]), "started_at": iso_utc(row["started_at"]),
        "finished_at": iso_utc(row["finished_at"]), "scheduled_for": iso_utc(row["scheduled_for"]),
        "resumes": row["resumes"], "resumed_at": iso_utc(row["resumed_at"]),
    }
    if state == "CANCELLED":
        entries, completed, not_completed = cancelled_outcome(row["batches"] or [], KIND_STAGES[row["kind"]], stages)
        status.update(result=entries, completed=completed, not_completed=not_completed,
                      cancelled_by=row["cancelled_by"], cancelled_at=iso_utc(row["cancelled_at"]))
    return status


def cancelled_outcome(batches: list[list[str]], stage_names: tuple[str, ...],
                      stages: dict[str, list[dict]]) -> tuple[list[dict], list[str], list[str]]:
    """A cancelled run as (stage entries, instruments completed, instruments not completed).

    Every stage an instrument did not settle gets a "cancelled" entry; an instrument completed
    when each of its stages ended ok.
    """
    planned = {label for batch in batches for label in batch}
    labels = sorted(planned | set(stages))
    settled: dict[str, list[dict]] = {}
    for label in labels:
        done = {entry["stage"]: entry for entry in stages.get(label, [])}
        # One the plan refused ran nothing: its own entry (stage "plan") says why.
        settled[label] = ([done.get(name, {"stage": name, "status": "cancelled"}) for name in stage_names]
                          if label in planned else stages[label])
    completed = [label for label in labels if all(entry["status"] == "ok" for entry in settled[label])]
    return (_stage_entries(settled), completed, [label for label in labels if label not in completed])


def run_summary(row: dict) -> dict:
    """One line of a run listing (API and CLI alike), from its pipeline_runs row."""
    return {"task_id": row["id"], "task_type": row["kind"], "scope": row["scope"], "status": row["state"],
            "priority": row["priority"], "errors": row["errors"], "created_at": iso_utc(row["created_at"]),
            "scheduled_for": iso_utc(row["scheduled_for"]), "started_at": iso_utc(row["started_at"]),
            "finished_at": iso_utc(row["finished_at"]), "cancelled_by": row["cancelled_by"],
            "cancelled_at": iso_utc(row["cancelled_at"]), "resumes": row["resumes"]}


def _stage_entries(stages: dict) -> list[dict]:
    """One entry per instrument and stage, in the order the stages ran."""
    return [{"instrument": instrument, **entry} for instrument, entries in sorted(stages.items()) for entry in entries]
