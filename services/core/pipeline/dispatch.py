"""Queueing a run's work, at its start and at a resume: a chain of stage tasks per batch, and the finish."""

from __future__ import annotations

from celery import chain, chord

from services.core.celery_app import app
from services.core.config import get_settings
from services.core.pipeline.runs import stage_task_id
from services.core.pipeline.stages import KIND_STAGES, STAGES
from services.core.pipeline.time_limits import stage_time_limits
from services.core.priority import broker_priority

__all__ = ["batch_chain", "finish_signature", "dispatch"]


def batch_chain(carry: dict, batch: int, kind: str, priority: int, first: str | None = None):
    """The chain of one batch's stage tasks from stage `first` (the kind's first stage by default) on."""
    # Every stage task inherits the run's priority, so an urgent run overtakes a backlog at each hop,
    # and its kind's time limits (a backfill outlasts an hourly sync); its id is derived from the
    # run's and the batch's, so a cancel can revoke it without asking the broker.
    names = KIND_STAGES[kind]
    names = names[names.index(first):] if first is not None else names
    limits = stage_time_limits(kind, get_settings())
    run_id = carry["run_id"]
    stages = [app.signature(STAGES[name].task, priority=broker_priority(priority),
                            task_id=stage_task_id(run_id, batch, name), **limits) for name in names]
    stages[0] = stages[0].clone(args=(carry,))
    return chain(*stages)


def finish_signature(run_id: str, kind: str, scope: dict, priority: int):
    """`pipeline.finish` for the run, with `pipeline.abort` as its errback (a chain that died outside a stage).

    Its root id is the run's, so every message of the run (the chains of a chord take the body's
    root id) carries it wherever it is sent from: the lost-run check finds a run by it.
    """
    urgency = broker_priority(priority)
    finish = app.signature("pipeline.finish", args=(run_id, kind, scope), priority=urgency, root_id=run_id)
    finish.on_error(app.signature("pipeline.abort", kwargs={"run_id": run_id, "kind": kind, "scope": scope},
                                  priority=urgency, root_id=run_id))
    return finish


def dispatch(chains: list, finish) -> None:
    """Queue the chains as a chord closed by `finish`; with no chain, the finish alone (the run ends now)."""
    if chains:
        chord(chains)(finish)
    else:  # the chord would have put the chains' carries first
        finish.clone(args=([],)).apply_async()
