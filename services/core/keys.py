"""Every Redis key candleflow writes outside Celery's own, with its lifetime: one place to read them all."""

from __future__ import annotations

import json

__all__ = ["RUN_LOCK_TTL_S", "RUN_RECORD_TTL_S", "REDBEAT_PREFIX", "REDBEAT_LOCK", "REDBEAT_SCHEDULE",
           "REDBEAT_STATICS", "RUN_LOCK_PATTERN", "redbeat_entry", "run_lock", "run_record", "run_dispatched",
           "rate_limit"]

PREFIX = "candleflow:"
# A run still "running" after this long is presumed lost (worker crash plus result expiry);
# its lock and its dispatch marker expire then, and the daily prune fails the run. The minute
# lost-run check (pipeline.find_lost) resumes a started run whose messages are gone long before
# that, and fails one lost before it started.
RUN_LOCK_TTL_S = 6 * 3600
# A queued run's record answers status polls until its row exists; a week is ample.
RUN_RECORD_TTL_S = 7 * 86400
# RedBeat names its entries PREFIX + job name and its sorted set PREFIX + ":schedule".
REDBEAT_PREFIX = f"{PREFIX}redbeat:"
REDBEAT_LOCK = f"{REDBEAT_PREFIX}lock"
# RedBeat's sorted set of entry keys by next due time, and its set of jobs once static (no longer used).
REDBEAT_SCHEDULE = f"{REDBEAT_PREFIX}:schedule"
REDBEAT_STATICS = f"{REDBEAT_PREFIX}:statics"


def redbeat_entry(job: str) -> str:
    """One schedule job's RedBeat hash (definition, meta, our last_run); it lives until the job is deleted."""
    return f"{REDBEAT_PREFIX}{job}"


# Every run's de-duplication lock, for a SCAN (the lost-run check reads them once a minute).
RUN_LOCK_PATTERN = f"{PREFIX}run-lock:*"


def run_lock(kind: str, scope: dict) -> str:
    """The de-duplication lock of one kind and scope; it holds the id of the run in progress."""
    return f"{PREFIX}run-lock:{kind}:{json.dumps(scope, sort_keys=True)}"


def run_record(run_id: str) -> str:
    """A queued run's kind and scope, for status polls before its Postgres row exists."""
    return f"{PREFIX}run:{run_id}"


def run_dispatched(run_id: str) -> str:
    """Set once a run's stage tasks are queued, so a redelivered start does not fan out twice."""
    return f"{PREFIX}run-dispatched:{run_id}"


def rate_limit(exchange: str) -> str:
    """The shared request budget of one exchange (a GCRA timestamp)."""
    return f"{PREFIX}ratelimit:{exchange}"


def message_holder(task_id: str) -> str:
    """Which worker process received a task's message (hostname and pid), until the visibility timeout."""
    return f"{PREFIX}held-by:{task_id}"


# Delivery tags of messages whose holder was found gone, with when it was first missed.
ORPHAN_SUSPECTS = f"{PREFIX}orphan-suspects"
