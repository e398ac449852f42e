"""The one table of pipeline stages, and the run kinds built from it.

Adding a stage is one `Stage` entry here, one pure function in its worker package
registered with `register_stage`, and its test.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy.exc import InterfaceError, OperationalError

from services.core.exceptions import RetryableSourceError

__all__ = ["TRANSIENT_ERRORS", "RETRY_POLICY", "Stage", "STAGES", "KIND_STAGES", "KINDS", "stage_params"]

# A Postgres restart or a Redis blip: worth a Celery retry, never a permanent failure. A restart
# also shows as InterfaceError ("connection already closed") on a connection it cut mid-stage.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# How Celery retries them: exponential backoff with full jitter, capped.
RETRY_POLICY = {"retry_backoff": 2, "retry_backoff_max": 120, "retry_jitter": True, "max_retries": 10}


@dataclass(frozen=True)
class Stage:
    """One step of an instrument's chain, as data."""

    name: str
    queue: str  # the worker that runs it
    watermark: str | None  # its row in stage_watermarks (how far it has processed a series), if any
    accepts: frozenset[str] = frozenset()  # run parameters handed to its work; the others are refused
    requires: frozenset[str] = frozenset()  # scope fields a run of it must name (symbol, since, …)
    waits_for: str | None = None  # the stage whose processed bars it may read
    retry_for: tuple[type[BaseException], ...] = TRANSIENT_ERRORS  # errors Celery retries
    fetches: bool = False  # reads from the configured EXCHANGE: skipped on any other exchange's instruments

    @property
    def task(self) -> str:
        """The Celery task name; its prefix routes it to the stage's queue."""
        return f"{self.queue}.stage.{self.name}"


_SINCE = frozenset({"since"})
STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    # The whole exchange unreachable is retried by Celery; failed windows are ledgered for repair.
    Stage("ohlc", "ingest", None, retry_for=(*TRANSIENT_ERRORS, RetryableSourceError), fetches=True),
    Stage("backfill", "ingest", None, accepts=frozenset({"since", "until"}), requires=frozenset({"symbol", "since"}),
          retry_for=(*TRANSIENT_ERRORS, RetryableSourceError), fetches=True),
    Stage("indicators", "indicators", "indicators", accepts=_SINCE),
    Stage("ema", "indicators", "ema_channel", accepts=_SINCE),
    Stage("regime", "indicators", "regime", accepts=_SINCE),
    Stage("patterns", "indicators", "patterns", accepts=_SINCE),
    Stage("levels", "indicators", None),
    # Signals read only bars the indicators stage has fully computed.
    Stage("signals", "signals", "signals", accepts=_SINCE, waits_for="indicators"),
)}

# What each run kind runs per instrument, in order: stage names from the table.
KIND_STAGES: dict[str, tuple[str, ...]] = {
    "all": ("ohlc", "indicators", "signals"),
    **{name: (name,) for name in STAGES},
}
KINDS = tuple(KIND_STAGES)


def stage_params(stage: Stage, params: dict) -> dict:
    """The run parameters this stage takes, from those the run was given."""
    return {name: value for name, value in params.items() if name in stage.accepts}
