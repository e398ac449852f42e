"""Cancelling a run: CANCELLED in Postgres first (durable), then every task of it revoked and its lock freed."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from celery import Celery
from sqlalchemy import Engine

from services.core.pipeline import records
from services.core.pipeline.runs import FINISHED_STATES, KIND_STAGES, queued_run, release_run, stage_task_id

__all__ = ["RunNotCancellable", "CancelOutcome", "run_task_ids", "cancel_run"]

log = logging.getLogger(__name__)


class RunNotCancellable(Exception):
    """The run already finished; `state` says how."""

    def __init__(self, run_id: str, state: str) -> None:
        super().__init__(f"run {run_id} is already {state}; only a run not yet finished can be cancelled")
        self.state = state


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: the run, who cancelled it, and the task ids it revoked."""

    run_id: str
    cancelled_by: str
    revoked: list[str]


def run_task_ids(run_id: str, kind: str, batches: list[list[str]]) -> list[str]:
    """Every task id a run has or will have: its start (the run id) and each batch's stage tasks."""
    return [run_id, *(stage_task_id(run_id, batch, stage)
                      for batch in range(len(batches)) for stage in KIND_STAGES[kind])]


def cancel_run(celery: Celery, client: redis.Redis, engine: Engine, run_id: str, by: str) -> CancelOutcome | None:
    """Cancel the run; None when there is no such run, RunNotCancellable when it already finished.

    The state is written before anything is revoked: a revoke reaches only the workers up now,
    while start, every stage task and finish read the state and do nothing for a cancelled run.
    """
    with engine.connect() as conn:
        row = records.read_run(conn, run_id)
    if row is None:
        record = queued_run(client, run_id)
        if record is None:
            return None
        row = {"kind": record["kind"], "scope": record["scope"], "priority": record["priority"], "batches": [],
               "state": "PENDING"}
    if row["state"] in FINISHED_STATES:
        raise RunNotCancellable(run_id, row["state"])
    with engine.begin() as conn:
        cancelled = records.cancel_run_row(conn, run_id, row["kind"], row["scope"], row["priority"], by)
    if not cancelled:  # it finished between the read and the write
        with engine.connect() as conn:
            raise RunNotCancellable(run_id, records.run_state(conn, run_id) or "finished")
    with engine.connect() as conn:  # the start may have planned its batches since the read
        batches = records.read_run(conn, run_id)["batches"] or []
    revoked = run_task_ids(run_id, row["kind"], batches)
    celery.control.revoke(revoked, terminate=True)
    release_run(client, row["kind"], row["scope"], run_id)
    log.info("run %s cancelled by %s; %d task id(s) revoked", run_id, by, len(revoked))
    return CancelOutcome(run_id, by, revoked)
