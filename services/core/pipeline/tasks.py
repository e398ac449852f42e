"""Pipeline orchestration tasks: start a run as a chord of per-instrument chains, then finish it."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import redis
from celery import Task
from celery.exceptions import Retry

from services.core import keys
from services.core.brokers import broker_redis
from services.core.celery_app import app
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.pipeline import records
from services.core.pipeline.chain import instrument_label, new_carry
from services.core.pipeline.dispatch import batch_chain, dispatch, finish_signature
from services.core.pipeline.lost import recover_lost_runs
from services.core.pipeline.orphans import restore_orphans
from services.core.pipeline.resume import incomplete, record_outcomes
from services.core.pipeline.runs import FINISHED_STATES, claim_run, release_run, request_of
from services.core.pipeline.scopes import resolve_range, scope_exchange, scope_symbols, scope_timeframes
from services.core.pipeline.stages import KIND_STAGES, RETRY_POLICY, TRANSIENT_ERRORS
from services.core.pipeline.time_limits import kind_time_limits
from services.core.priority import DEFAULT_PRIORITY
from services.core.store.instruments import active_universe
from services.core.store.partitions import maintain_partitions

__all__ = ["start_run", "finish_run", "abort_run", "prune_history", "find_lost", "maintain_partitions_task", "ping",
           "plan_instruments", "plan_batches", "summarise"]

log = logging.getLogger(__name__)

# A worker refuses to start on a TASK_TIME_LIMITS entry naming no run kind, not at its first run.
kind_time_limits(get_settings())


def plan_instruments(scope: dict, universe: dict[str, list[str]]) -> tuple[list[tuple[str, str]], list[dict]]:
    """Which (symbol, timeframe) pairs a run covers, and the outcomes of those it cannot.

    `universe` is symbol → timeframes of the active instruments. Without symbols the run covers
    all of them, each in its own timeframes (or those of the scope it keeps); a named symbol
    must be active and keep the named timeframes, else it is refused with the reason (an
    instrument retired after the run was asked for, say), reported like any failed instrument.
    """
    named = scope_symbols(scope)
    wanted = scope_timeframes(scope)
    pairs: list[tuple[str, str]] = []
    refused: list[dict] = []
    for symbol in named or sorted(universe):
        kept = universe.get(symbol)
        for timeframe in wanted or kept or ["*"]:
            if kept is None:
                reason = "not an active instrument (retired, or never added to the universe)"
            elif timeframe in kept:
                pairs.append((symbol, timeframe))
                continue
            elif not named:
                continue  # a timeframe filter over the universe selects the instruments that keep it
            else:
                reason = f"does not keep {timeframe} (it keeps {', '.join(kept)})"
            failure = {"stage": "plan", "error": reason}
            refused.append({"symbol": symbol, "timeframe": timeframe,
                            "stages": [{**failure, "status": "failed"}], "failed": failure})
    return pairs, refused


def plan_batches(instruments: list[tuple[str, str]], size: int) -> list[tuple[str, list[str]]]:
    """(timeframe, symbols) batches of at most `size` instruments, each of one timeframe, in plan order."""
    by_timeframe: dict[str, list[str]] = {}
    for symbol, timeframe in instruments:
        by_timeframe.setdefault(timeframe, []).append(symbol)
    return [(timeframe, symbols[start:start + size])
            for timeframe, symbols in by_timeframe.items() for start in range(0, len(symbols), size)]


# A Postgres restart or a Redis blip is retried; the tasks below are safe to run again.
_TRANSIENT = {"autoretry_for": TRANSIENT_ERRORS, **RETRY_POLICY}


@app.task(name="pipeline.start", bind=True, **_TRANSIENT)
def start_run(self, kind: str, scope: dict, priority: int = DEFAULT_PRIORITY) -> dict:
    """Record the run, then fan out one chain per batch of instruments at the run's priority
    (0-9, 9 most urgent); `pipeline.finish` closes it."""
    run_id = self.request.id
    client = redis.Redis.from_url(get_settings().redis_url)
    with get_engine().connect() as conn:
        state = records.run_state(conn, run_id)
    if state in FINISHED_STATES:  # cancelled while it waited (revocation is best effort), or a late copy
        log.info("run %s is %s; its start does nothing", run_id, state)
        return {"run_id": run_id, "state": state}
    # Beat-started and delayed runs arrive without the API's claim; a run still going wins.
    running = claim_run(client, request_of(kind, scope), run_id)
    if running is not None:
        log.warning("run %s (%s %s) skipped: run %s of the same kind and scope is still going",
                    run_id, kind, scope, running)
        if state == "SCHEDULED":  # it has a row that would otherwise wait forever
            error = {"instrument": "*", "stage": "pipeline", "error": f"not started: run {running} of the same "
                                                                      "kind and scope was still going"}
            with get_engine().begin() as conn:
                records.fail_run_row(conn, run_id, [error])
        return {"run_id": run_id, "duplicate_of": running}
    try:
        return _dispatch(client, run_id, kind, scope, priority)
    except Exception:
        release_run(client, kind, scope, run_id)  # a retry claims it again; a final failure frees it
        raise


def _dispatch(client: redis.Redis, run_id: str, kind: str, scope: dict, priority: int) -> dict:
    settings = get_settings()
    exchange = scope_exchange(scope, settings.exchange)
    with get_engine().connect() as conn:
        universe = active_universe(conn, exchange)
    instruments, refused = plan_instruments(scope, universe)
    if not universe and not scope_symbols(scope):
        log.warning("run %s: the universe holds no active instrument on %s; add some with POST /api/instruments "
                    "(or candleflow import, on a stock venue)", run_id, exchange)
    batches = plan_batches(instruments, settings.pipeline_batch_size)
    labels = [[instrument_label(symbol, timeframe) for symbol in symbols] for timeframe, symbols in batches]
    with get_engine().begin() as conn:
        state = records.insert_run(conn, run_id, kind, scope, priority, labels)
        if state == "STARTED":  # the refusals are records like any stage's: the finish reads them back
            records.record_stages(conn, run_id, [(instrument_label(o["symbol"], o["timeframe"]), o["stages"][0])
                                                 for o in refused])
    if state != "STARTED":  # cancelled between the check and now
        release_run(client, kind, scope, run_id)
        log.info("run %s is %s; not dispatched", run_id, state)
        return {"run_id": run_id, "state": state}
    # A relative range (days, hours, bars) ends now, resolved once per batch so every stage sees one range.
    now_ms = int(time.time() * 1000)
    chains = [batch_chain(new_carry(run_id, exchange, symbols, timeframe, resolve_range(scope, timeframe, now_ms)),
                          batch, kind, priority) for batch, (timeframe, symbols) in enumerate(batches)]
    finish = finish_signature(run_id, kind, scope, priority)
    # A redelivered start (worker lost after dispatching) must not fan out a second time.
    if not client.set(keys.run_dispatched(run_id), 1, nx=True, ex=keys.RUN_LOCK_TTL_S):
        log.warning("run %s already dispatched; redelivery ignored", run_id)
        return {"run_id": run_id, "redelivered": True}
    # Nothing to run (every named instrument refused, or an empty universe): the finish alone, the run ends now.
    dispatch(chains, finish)
    log.info("run %s (%s %s): %d instrument(s) in %d batch chain(s) queued", run_id, kind, scope,
             len(instruments), len(chains))
    return {"run_id": run_id, "instruments": [instrument_label(*pair) for pair in instruments]}


def summarise(outcomes: list[dict]) -> tuple[str, list[dict]]:
    """The run's final state from its instruments' outcomes, failures named: all ok → SUCCESS,
    some failed → PARTIAL, all failed → FAILURE."""
    errors = [{"instrument": instrument_label(o["symbol"], o["timeframe"]), **o["failed"]}
              for o in outcomes if o.get("failed")]
    if not errors:
        return "SUCCESS", []
    return ("FAILURE" if len(errors) == len(outcomes) else "PARTIAL"), errors


# How long a finish waits before it reads the records again, while an instrument's last stage is not recorded.
FINISH_WAIT_S = 10


@app.task(name="pipeline.finish", bind=True, **_TRANSIENT)
def finish_run(self: Task, _trigger: list[dict], run_id: str, kind: str, scope: dict,
               refused: list[dict] | None = None) -> dict:
    """Write the run's final state from its records, then let the next run of this kind and scope start.

    The chord's results (`_trigger`, the batches' carries) only say the chains ended: every planned
    instrument's outcome is read from its recorded stages, so one a carry missed still counts and one
    missing from the records is never taken for fine. While an instrument lacks its last stage the
    finish waits as long as the run shows progress, then leaves the run to pipeline.find_lost, which
    resumes it once none of its messages is left (resume.py). `refused`: the plan's refusals of a
    finish queued before they were recorded with the run's stages.
    """
    engine = get_engine()
    with engine.connect() as conn:
        row = records.read_run(conn, run_id)
        progress = records.read_stage_progress(conn, run_id)
    if row is None or row["state"] in FINISHED_STATES:  # cancelled (the cancel freed the lock), or a late copy
        state = row and row["state"]
        log.info("run %s is %s; its finish leaves it so", run_id, state)
        return {"state": state}
    stage_names = KIND_STAGES[kind]
    batches = row["batches"] or []
    outcomes = record_outcomes(batches, stage_names, progress)
    recorded = {instrument_label(o["symbol"], o["timeframe"]) for o in outcomes}
    outcomes += [o for o in refused or [] if instrument_label(o["symbol"], o["timeframe"]) not in recorded]
    short = incomplete(batches, stage_names, outcomes)
    if short:
        quiet_after_s = get_settings().lost_run_after_s
        with engine.connect() as conn:
            quiet_s = records.quiet_for_s(conn, run_id)
        if quiet_s < quiet_after_s:
            log.info("run %s: %d instrument(s) lack their last stage; the finish waits %d s", run_id, len(short),
                     FINISH_WAIT_S)
            raise _wait(self, FINISH_WAIT_S)
        # Not resumed from here: a chain may still be alive (a long stage records only at its end).
        # pipeline.find_lost resumes the run once none of its messages is left in the broker.
        labels = [instrument_label(o["symbol"], o["timeframe"]) for o in short]
        log.warning("run %s: %d instrument(s) without their %s stage after %.0f s without progress (%s); the "
                    "finish stops waiting and leaves the run to pipeline.find_lost", run_id, len(short),
                    stage_names[-1], quiet_s, ", ".join(labels[:5]) + (" …" if len(labels) > 5 else ""))
        return {"state": "STARTED", "left_to": "pipeline.find_lost", "incomplete": labels}
    state, errors = summarise(outcomes)
    stages = {instrument_label(o["symbol"], o["timeframe"]): o["stages"] for o in outcomes}
    with engine.begin() as conn:
        finished = records.finish_run_row(conn, run_id, state, stages, errors)
    if not finished:  # finished meanwhile (cancelled, failed by the resume limit): its writer freed the lock
        with engine.connect() as conn:
            state = records.run_state(conn, run_id)
        log.info("run %s is %s; its finish leaves it so", run_id, state)
        return {"state": state}
    release_run(redis.Redis.from_url(get_settings().redis_url), kind, scope, run_id)
    log.info("run %s finished %s (%d failed instrument(s))", run_id, state, len(errors))
    return {"state": state, "errors": errors}


def _wait(task: Task, seconds: int) -> Retry:
    """Send this task again in `seconds` and the Retry to raise: Task.retry, except that the copy keeps the
    retry count it came with. Waiting for a stage is no failure, so it must not spend the retries
    RETRY_POLICY grants transient errors (Task.retry counts every call and stops at max_retries)."""
    copy = task.signature_from_request(countdown=seconds, retries=task.request.retries)
    copy.apply_async()  # root id, errback and priority kept: the run stays alive for pipeline.find_lost
    return Retry(when=seconds, sig=copy)


@app.task(name="pipeline.abort", **_TRANSIENT)
def abort_run(*_errback_args, run_id: str, kind: str, scope: dict) -> None:
    """Errback when a chain died outside a stage (hard time limit, lost database): FAILURE, not stuck."""
    errors = [{"instrument": "*", "stage": "pipeline", "error": "a stage task crashed; see the worker logs"}]
    with get_engine().begin() as conn:
        records.fail_run_row(conn, run_id, errors)
    release_run(redis.Redis.from_url(get_settings().redis_url), kind, scope, run_id)


@app.task(name="pipeline.prune", **_TRANSIENT)
def prune_history() -> dict:
    """Fail runs lost in flight, then delete finished runs older than RUNS_RETENTION_DAYS."""
    settings = get_settings()
    days = settings.runs_retention_days
    lost = _fail_expired_runs(redis.Redis.from_url(settings.redis_url))
    with get_engine().begin() as conn:
        runs = records.delete_runs_before(conn, days)
    log.info("pruned %d run(s) older than %d days; %d lost run(s) failed", runs, days, len(lost))
    return {"runs": runs, "lost_runs": lost}


def _fail_expired_runs(client: redis.Redis) -> list[str]:
    """Runs unfinished after the lock's lifetime (purged queue, messages lost): FAILURE, lock freed."""
    # A run older than its lock is presumed lost.
    error = {"instrument": "*", "stage": "pipeline",
             "error": f"lost: not finished within {keys.RUN_LOCK_TTL_S / 3600:g} h"}
    with get_engine().begin() as conn:
        rows = records.fail_lost_runs(conn, keys.RUN_LOCK_TTL_S, error)
    for run_id, kind, scope in rows:
        release_run(client, kind, scope, run_id)
    return [row[0] for row in rows]


@app.task(name="pipeline.find_lost", **_TRANSIENT)
def find_lost() -> dict:
    """Hand a dead worker's messages back to their queues; then, for unfinished runs none of whose messages
    the broker still holds (purged queue, flushed Redis, a message lost in delivery), resume a started one
    from its records and fail the others."""
    settings = get_settings()
    broker = broker_redis(settings.broker_url, settings.broker_sentinel_master)
    if broker is None:
        # RabbitMQ hands a dead consumer's messages back the moment its connection drops, and its
        # queues cannot be read without taking the messages: runs lost there wait for the daily prune.
        return {"restored_tasks": [], "lost_runs": [], "resumed_runs": [],
                "skipped": "the broker's messages cannot be read in place"}
    client = redis.Redis.from_url(settings.redis_url)
    restored = restore_orphans(app, client, settings.dead_worker_after_s, broker=broker)
    lost, resumed = recover_lost_runs(get_engine(), client, settings.lost_run_after_s, broker=broker)
    if lost:
        log.warning("failed %d run(s) whose messages were lost: %s", len(lost), ", ".join(lost))
    return {"restored_tasks": restored, "lost_runs": lost, "resumed_runs": resumed}


@app.task(name="pipeline.maintain_partitions", **_TRANSIENT)
def maintain_partitions_task() -> dict:
    """Create candle partitions ahead and for rows waiting in a default; drop those past CANDLE_RETENTION."""
    settings = get_settings()
    return maintain_partitions(get_engine(), settings.partition_interval, settings.candle_partitions_ahead,
                               settings.retention_by_timeframe, settings.timeframes, datetime.now(UTC))


@app.task(name="pipeline.ping")
def ping(*_previous: object) -> str:
    """Does nothing: measures Celery's own cost per task and proves a queue is served end to end."""
    return "pong"
