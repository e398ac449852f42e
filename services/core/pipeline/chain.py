"""A batch's chain: the carry passed from stage to stage, and the task each stage runs as.

A run fans out batches of instruments (one timeframe each); every stage task works on
a whole batch, while outcomes stay per instrument: one instrument's failure is
reported by name and never fails or retries its neighbours' work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery import Task
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy import Connection

from services.core.celery_app import app
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.pipeline.failures import describe_failure
from services.core.pipeline.records import record_stages, run_state
from services.core.pipeline.runs import FINISHED_STATES
from services.core.pipeline.stages import RETRY_POLICY, STAGES, Stage, stage_params
from services.core.store.instruments import resolve_instruments
from services.core.venues import venue

__all__ = ["BatchWork", "new_carry", "carry_exchange", "instrument_label", "per_instrument",
           "in_one_transaction", "run_stage", "register_stage"]

log = logging.getLogger(__name__)

# work(symbols, timeframe, exchange=…, **the run parameters the stage accepts) → per symbol, its
# counts or the exception that stopped it. A symbol missing from the answer counts as failed.
BatchWork = Callable[..., dict[str, dict | Exception]]


def instrument_label(symbol: str, timeframe: str) -> str:
    return f"{symbol} {timeframe}"


def new_carry(run_id: str, exchange: str, symbols: list[str], timeframe: str, params: dict,
              outcomes: dict[str, dict] | None = None) -> dict:
    """What travels down one batch's chain: which instruments, and what happened to each so far
    (`outcomes`: symbol → stages and first failure, when a resume rebuilds it from the records)."""
    outcomes = outcomes or {}
    return {"run_id": run_id, "exchange": exchange, "timeframe": timeframe, "params": params, "symbols": list(symbols),
            "outcomes": {symbol: outcomes.get(symbol, {"stages": [], "failed": None}) for symbol in symbols}}


def carry_exchange(carry: dict) -> str:
    """The exchange of a carry's instruments (a carry queued before runs named one is on EXCHANGE's)."""
    return carry.get("exchange") or get_settings().exchange


def per_instrument(work_one: Callable[..., dict]) -> BatchWork:
    """Batch work from a one-instrument function: each symbol in turn, each failure its own."""
    def work(symbols: list[str], timeframe: str, exchange: str, **params) -> dict[str, dict | Exception]:
        outcomes: dict[str, dict | Exception] = {}
        for symbol in symbols:
            try:
                outcomes[symbol] = work_one(symbol, timeframe, exchange=exchange, **params)
            except Exception as exc:
                outcomes[symbol] = exc
        return outcomes

    work.__doc__ = work_one.__doc__
    work.__name__ = getattr(work_one, "__name__", "work")
    return work


def in_one_transaction(exchange: str, symbols: list[str], work: Callable[[Connection, dict[str, int]], dict]) -> dict:
    """Batch work that reads and writes in one transaction: `work(conn, {symbol: instrument id})`.

    A symbol never ingested is its own UnknownInstrument; an error of the transaction itself
    (the database) is every symbol's, so the whole batch is retried or reported.
    """
    try:
        with get_engine().begin() as conn:
            instruments, unknown = resolve_instruments(conn, exchange, symbols)
            return {**unknown, **work(conn, instruments)}
    except Exception as exc:
        return dict.fromkeys(symbols, exc)


def _will_retry(task: Task | None, stage: Stage, exc: Exception) -> bool:
    """A transient error with retries left goes back to Celery; anything else is the instrument's outcome."""
    return task is not None and isinstance(exc, stage.retry_for) and task.request.retries < task.max_retries


def _entry(stage: Stage, outcome: dict | Exception | None, seconds: float, batch: int) -> dict:
    if isinstance(outcome, dict):
        return {"stage": stage.name, "status": "ok", "seconds": seconds, "batch": batch, **outcome}
    error = "internal error: the stage gave no outcome for this instrument" if outcome is None \
        else describe_failure(outcome)
    return {"stage": stage.name, "status": "failed", "seconds": seconds, "batch": batch, "error": error}


def _skipped(stage: Stage, reason: str, after: str | None = None) -> dict:
    # `after`: the stage whose failure this skip follows, so the finish can tell a skip that a later
    # copy of that stage made stale (it ended ok after all) from a real one (resume.py).
    entry = {"stage": stage.name, "status": "skipped", "reason": reason}
    return {**entry, "after": after} if after else entry


def _not_fetched(exchange: str) -> str:
    # A stock venue's candles come from imports; only the configured EXCHANGE is fetched from.
    if venue(exchange).fetches:
        return f"not fetched: this deployment fetches from {get_settings().exchange} only"
    return f"not fetched: {exchange} is a stock venue, fed by imports (candleflow import)"


def _has_entry(outcome: dict, stage: Stage) -> bool:
    return any(entry["stage"] == stage.name for entry in outcome["stages"])


def run_stage(carry: dict, stage: Stage, work: BatchWork, task: Task | None = None) -> dict:
    """Run `work` on the batch's instruments still going, record each outcome, and pass the carry on.

    A cancelled or finished run's stage does nothing (a cancelled run's status shows the stage "cancelled").
    Instruments that failed an earlier stage are skipped; those this stage already settled
    (a retry of the same batch) are not run again. A permanent failure is the instrument's
    outcome. A transient one (`stage.retry_for`) sends the batch back to Celery while
    retries are left, carrying what its neighbours already did, so only the instruments
    that hit it run again; once the retries are spent it is carried like any failure.
    """
    with get_engine().connect() as conn:
        state = run_state(conn, carry["run_id"])
    # Cancelled: revocation is best effort (a restarted worker forgets it); this check is not. Finished:
    # a copy delivered again after its run ended (an acknowledgement lost to a Redis outage) has nothing to do.
    if state in FINISHED_STATES:
        log.info("run %s is %s: %s of %d instrument(s) not run", carry["run_id"], state, stage.name,
                 len(carry["symbols"]))
        return carry
    outcomes = carry["outcomes"]
    exchange = carry_exchange(carry)
    todo = [symbol for symbol in carry["symbols"] if not _has_entry(outcomes[symbol], stage)]
    settled = [(symbol, _skipped(stage, f"{outcomes[symbol]['failed']['stage']} failed",
                                 after=outcomes[symbol]["failed"]["stage"]))
               for symbol in todo if outcomes[symbol]["failed"]]
    pending = [symbol for symbol in todo if not outcomes[symbol]["failed"]]
    if stage.fetches and exchange != get_settings().exchange:
        settled += [(symbol, _skipped(stage, _not_fetched(exchange))) for symbol in pending]
        pending = []
    started = time.monotonic()
    results = (work(pending, carry["timeframe"], exchange=exchange, **stage_params(stage, carry["params"]))
               if pending else {})
    seconds = round(time.monotonic() - started, 3)
    retry = [(symbol, results[symbol]) for symbol in pending
             if isinstance(results.get(symbol), Exception) and _will_retry(task, stage, results[symbol])]
    retried = {symbol for symbol, _ in retry}
    settled += [(symbol, _entry(stage, results.get(symbol), seconds, len(pending)))
                for symbol in pending if symbol not in retried]
    for symbol, entry in settled:
        outcomes[symbol]["stages"].append(entry)
        if entry["status"] == "failed":
            # The status shows the short label; the log keeps the whole error and its traceback.
            cause = results.get(symbol)
            log.error("run %s: %s %s failed: %s", carry["run_id"], instrument_label(symbol, carry["timeframe"]),
                      stage.name, entry["error"], exc_info=cause if isinstance(cause, Exception) else None)
            outcomes[symbol]["failed"] = {"stage": stage.name, "error": entry["error"]}
    with get_engine().begin() as conn:
        record_stages(conn, carry["run_id"], [(instrument_label(s, carry["timeframe"]), e) for s, e in settled])
    if retry:
        _send_back(task, carry, stage, retry)
    return carry


def _send_back(task: Task, carry: dict, stage: Stage, retry: list[tuple[str, Exception]]) -> None:
    """Retry the batch with its carry as it now stands, so settled instruments are not redone."""
    symbol, exc = retry[0]
    log.warning("run %s: %d instrument(s) of a %s batch hit %s (%s first); retrying them",
                carry["run_id"], len(retry), stage.name, type(exc).__name__, symbol)
    countdown = get_exponential_backoff_interval(
        factor=RETRY_POLICY["retry_backoff"], retries=task.request.retries,
        maximum=RETRY_POLICY["retry_backoff_max"], full_jitter=RETRY_POLICY["retry_jitter"])
    raise task.retry(args=(carry,), kwargs={}, exc=exc, countdown=countdown)


def register_stage(name: str, work: BatchWork) -> Task:
    """The Celery task of stage `name` from the stage table: its task name, queue and retries."""
    stage = STAGES[name]

    @app.task(name=stage.task, bind=True, autoretry_for=stage.retry_for, **RETRY_POLICY)
    def run(self: Task, carry: dict) -> dict:
        return run_stage(carry, stage, work, task=self)

    run.__doc__ = f"Pipeline stage {name!r}: {work.__doc__ or work.__name__}"
    return run
