"""Pipeline runs: the kinds an operator can ask for, submission with de-duplication, status."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import redis
from celery import Celery
from sqlalchemy import Engine, text

from services.core.config import SYMBOL_RE, timeframe_seconds
from services.core.timeparse import parse_instant_ms

__all__ = ["KINDS", "KIND_STAGES", "RunRequest", "InvalidRunRequest", "validate_request", "claim_run", "request_of", "submit_run", "run_status",
           "release_run", "RUN_STATES"]

# What each kind runs per instrument, in order; each stage is one task on its worker's queue.
KIND_STAGES: dict[str, tuple[str, ...]] = {
    "all": ("ohlc", "indicators", "signals"),
    "ohlc": ("ohlc",),
    "indicators": ("indicators",),
    "ema": ("ema",),
    "regime": ("regime",),
    "patterns": ("patterns",),
    "levels": ("levels",),
    "signals": ("signals",),
    "backfill": ("backfill",),
}
KINDS = tuple(KIND_STAGES)
RUN_STATES = ("PENDING", "STARTED", "SUCCESS", "PARTIAL", "FAILURE")
# A run still "running" after this long is presumed lost (worker crash + result expiry).
_LOCK_TTL_S = 6 * 3600
_RECORD_TTL_S = 7 * 86400


class InvalidRunRequest(ValueError):
    """A run request that names a bad parameter; `parameter` says which."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class RunRequest:
    """What was asked: a kind, optionally narrowed to one symbol/timeframe, and a range for backfills."""

    kind: str
    symbol: str | None = None
    timeframe: str | None = None
    since: str | None = None
    until: str | None = None

    def scope(self) -> dict:
        return {k: v for k, v in (("symbol", self.symbol), ("timeframe", self.timeframe),
                                  ("since", self.since), ("until", self.until)) if v is not None}

    def dedup_key(self) -> str:
        return f"candleflow:run-lock:{self.kind}:{json.dumps(self.scope(), sort_keys=True)}"


def validate_request(kind: str | None, symbol: str | None = None, timeframe: str | None = None,
                     since: str | None = None, until: str | None = None) -> RunRequest:
    """Check every parameter; InvalidRunRequest names the first bad one."""
    if kind not in KIND_STAGES:
        raise InvalidRunRequest("task", f"unknown task type {kind!r}; valid types: {', '.join(KINDS)}")
    if symbol is not None and not SYMBOL_RE.fullmatch(symbol):
        raise InvalidRunRequest("symbol", f"malformed symbol {symbol!r}: expected BASE/QUOTE, e.g. BTC/USD")
    if timeframe is not None:
        try:
            timeframe_seconds(timeframe)
        except ValueError as exc:
            raise InvalidRunRequest("timeframe", str(exc)) from None
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            try:
                parse_instant_ms(value)
            except ValueError as exc:
                raise InvalidRunRequest(name, str(exc)) from None
    if kind == "backfill":
        if symbol is None:
            raise InvalidRunRequest("symbol", "a backfill needs symbol=BASE/QUOTE")
        if since is None:
            raise InvalidRunRequest("since", "a backfill needs since=<ISO date>")
        if until is not None and parse_instant_ms(until) <= parse_instant_ms(since):
            raise InvalidRunRequest("until", "until must be after since")
    return RunRequest(kind, symbol, timeframe, since, until)


def claim_run(client: redis.Redis, request: RunRequest, run_id: str) -> str | None:
    """Take the lock for this kind and scope; returns the id of the run already holding it, if any."""
    key = request.dedup_key()
    while not client.set(key, run_id, nx=True, ex=_LOCK_TTL_S):
        holder = client.get(key)
        if holder is not None:  # else it expired between our SET and GET: try again
            return None if holder.decode() == run_id else holder.decode()
    return None


def submit_run(celery: Celery, client: redis.Redis, request: RunRequest) -> tuple[str, bool]:
    """Queue a run by task name; returns (run id, True) or (the running duplicate's id, False)."""
    run_id = str(uuid.uuid4())
    running = claim_run(client, request, run_id)
    if running is not None:
        return running, False
    record = f"candleflow:run:{run_id}"
    client.set(record, json.dumps({"kind": request.kind, "scope": request.scope()}), ex=_RECORD_TTL_S)
    try:
        celery.send_task("pipeline.start", args=[request.kind, request.scope()], task_id=run_id)
    except Exception:
        # Not queued: neither a lock nor a PENDING record may outlive the failure.
        client.delete(record)
        release_run(client, request.kind, request.scope(), run_id)
        raise
    return run_id, True


def request_of(kind: str, scope: dict) -> RunRequest:
    """The request a stored run kind and scope stand for."""
    return RunRequest(kind, **{k: scope.get(k) for k in ("symbol", "timeframe", "since", "until")})


def release_run(client: redis.Redis, kind: str, scope: dict, run_id: str) -> None:
    """Drop the de-duplication lock if this run still holds it."""
    key = request_of(kind, scope).dedup_key()
    if (client.get(key) or b"").decode() == run_id:
        client.delete(key)


def run_status(engine: Engine, client: redis.Redis, run_id: str) -> dict | None:
    """The run's state and per-stage results; None when no such run was ever submitted."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT id, kind, scope, state, stages, errors, created_at, started_at, finished_at "
            "FROM pipeline_runs WHERE id = :id"), {"id": run_id}).mappings().first()
    if row is None:
        queued = client.get(f"candleflow:run:{run_id}")
        if queued is None:
            return None
        record = json.loads(queued)
        return {"task_id": run_id, "task_type": record["kind"], "scope": record["scope"], "status": "PENDING",
                "ready": False, "successful": False, "result": [], "error": None}
    state = row["state"]
    errors = row["errors"] or []
    stages = row["stages"] or {}
    if not stages:  # still running: progress rows, in the order the stages finished
        with engine.connect() as conn:
            for instrument, result in conn.execute(text(
                    "SELECT instrument, result FROM pipeline_stage_results WHERE run_id = :id "
                    "ORDER BY recorded_at"), {"id": run_id}):
                stages.setdefault(instrument, []).append(result)
    return {
        "task_id": run_id, "task_type": row["kind"], "scope": row["scope"], "status": state,
        "ready": state in ("SUCCESS", "PARTIAL", "FAILURE"), "successful": state == "SUCCESS",
        "result": _stage_entries(stages),
        "error": "; ".join(f"{e.get('instrument')}: {e.get('stage')}: {e.get('error')}" for e in errors) or None,
        "errors": errors,
        "created_at": _iso(row["created_at"]), "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
    }


def _stage_entries(stages: dict) -> list[dict]:
    """One entry per instrument and stage, in the order the stages ran."""
    return [{"instrument": instrument, **entry} for instrument, entries in sorted(stages.items()) for entry in entries]


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
