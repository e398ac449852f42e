"""An instrument's chain: the carry passed from stage to stage, and the task each stage runs as."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery import Task

from services.core.celery_app import app
from services.core.db import get_engine
from services.core.pipeline.records import record_stage
from services.core.pipeline.stages import RETRY_POLICY, STAGES, Stage, stage_params

__all__ = ["new_carry", "instrument_label", "run_stage", "register_stage"]

log = logging.getLogger(__name__)

# work(symbol, timeframe, **the run parameters the stage accepts) → the stage's counts.
StageWork = Callable[..., dict]


def instrument_label(symbol: str, timeframe: str) -> str:
    return f"{symbol} {timeframe}"


def new_carry(run_id: str, symbol: str, timeframe: str, params: dict) -> dict:
    """What travels down one instrument's chain: who it is, and what happened so far."""
    return {"run_id": run_id, "symbol": symbol, "timeframe": timeframe, "params": params,
            "stages": [], "failed": None}


def _will_retry(task: Task | None, stage: Stage, exc: Exception) -> bool:
    """A transient error with retries left goes back to Celery; anything else is the stage's outcome."""
    return task is not None and isinstance(exc, stage.retry_for) and task.request.retries < task.max_retries


def run_stage(carry: dict, stage: Stage, work: StageWork, task: Task | None = None) -> dict:
    """Run `work` for the carried instrument unless an earlier stage failed, and record the outcome.

    A permanent failure is carried to the end of the chain, so one instrument's failure
    is reported by name while the others complete. A transient one (`stage.retry_for`)
    is raised while the task has retries left, for Celery to retry with backoff; once
    they are spent it is carried like any other failure.
    """
    label = instrument_label(carry["symbol"], carry["timeframe"])
    if carry["failed"]:
        entry = {"stage": stage.name, "status": "skipped", "reason": f"{carry['failed']['stage']} failed"}
    else:
        started = time.monotonic()
        try:
            result = work(carry["symbol"], carry["timeframe"], **stage_params(stage, carry["params"]))
            entry = {"stage": stage.name, "status": "ok", "seconds": round(time.monotonic() - started, 3), **result}
        except Exception as exc:
            if _will_retry(task, stage, exc):
                log.warning("run %s: %s %s: %s; retrying", carry["run_id"], label, stage.name, exc)
                raise
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.error("run %s: %s %s failed: %s", carry["run_id"], label, stage.name, error)
            entry = {"stage": stage.name, "status": "failed", "seconds": round(time.monotonic() - started, 3),
                     "error": error}
            carry["failed"] = {"stage": stage.name, "error": error}
    carry["stages"].append(entry)
    with get_engine().begin() as conn:
        record_stage(conn, carry["run_id"], label, entry)
    return carry


def register_stage(name: str, work: StageWork) -> Task:
    """The Celery task of stage `name` from the stage table: its task name, queue and retries."""
    stage = STAGES[name]

    @app.task(name=stage.task, bind=True, autoretry_for=stage.retry_for, **RETRY_POLICY)
    def run(self: Task, carry: dict) -> dict:
        return run_stage(carry, stage, work, task=self)

    run.__doc__ = f"Pipeline stage {name!r}: {work.__doc__ or work.__name__}"
    return run
