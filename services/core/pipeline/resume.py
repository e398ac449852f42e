"""A run's outcome from its records, and resuming a started run whose instruments did not reach their last stage.

Every stage records each instrument's entry in `pipeline_stage_results`, and the run's row keeps
its planned batches: together they say what a run did, whatever became of its messages (a
worker cut off between kombu's pop and its filing of the message, a purged queue, a flushed
Redis). An instrument is complete once it has an entry for its kind's last stage; a resume
restarts each incomplete one at its first stage without an entry, with a carry rebuilt from its
entries, so a failed instrument is skipped onward exactly as in its first chain.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

import redis
from sqlalchemy import Engine

from services.core.config import get_settings
from services.core.pipeline import records
from services.core.pipeline.chain import instrument_label, new_carry
from services.core.pipeline.dispatch import batch_chain, dispatch, finish_signature
from services.core.pipeline.runs import claim_run, release_run, request_of
from services.core.pipeline.scopes import resolve_range, scope_exchange
from services.core.pipeline.stages import KIND_STAGES

__all__ = ["ResumeBatch", "parse_label", "record_outcomes", "incomplete", "next_stage", "plan_resume", "resume_run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumeBatch:
    """Instruments of one timeframe restarting at one stage, with what each did so far."""

    timeframe: str
    first: str
    symbols: list[str]
    outcomes: dict[str, dict]


def parse_label(label: str) -> tuple[str, str]:
    """(symbol, timeframe) of an instrument label "SYMBOL TF" (a symbol may hold a space; a timeframe never)."""
    symbol, _, timeframe = label.rpartition(" ")
    if not symbol:
        raise ValueError(f"not an instrument label (\"SYMBOL TIMEFRAME\"): {label!r}")
    return symbol, timeframe


def record_outcomes(batches: list[list[str]], stage_names: tuple[str, ...],
                    progress: dict[str, list[dict]]) -> list[dict]:
    """Every instrument's outcome from the records: symbol, timeframe, its entries in stage order and its
    first failure; the planned instruments in plan order, then any other recorded one (a plan's refusal)."""
    order = {name: index for index, name in enumerate(stage_names)}
    labels = dict.fromkeys([label for batch in batches for label in batch] + list(progress))
    outcomes = []
    for label in labels:
        entries = _current(sorted(progress.get(label, []), key=lambda entry: order.get(entry["stage"], -1)))
        failed = next(({"stage": entry["stage"], "error": entry.get("error")} for entry in entries
                       if entry.get("status") == "failed"), None)
        symbol, timeframe = parse_label(label)
        outcomes.append({"symbol": symbol, "timeframe": timeframe, "stages": entries, "failed": failed})
    return outcomes


def _current(entries: list[dict]) -> list[dict]:
    """The entries still true: a skip after a stage whose recorded entry is not failed is dropped. Two
    copies of a stage (a redelivery) may both run: one failed and its chain skipped onward, the other
    ended ok and overwrote it. The skipped stages then still have to run; as absent, they are."""
    failed = {entry["stage"] for entry in entries if entry.get("status") == "failed"}
    return [entry for entry in entries if entry.get("after") is None or entry["after"] in failed]


def incomplete(batches: list[list[str]], stage_names: tuple[str, ...], outcomes: list[dict]) -> list[dict]:
    """The planned instruments without an entry for the kind's last stage, in plan order."""
    planned = {label for batch in batches for label in batch}
    last = stage_names[-1]
    return [outcome for outcome in outcomes if instrument_label(outcome["symbol"], outcome["timeframe"]) in planned
            and not any(entry["stage"] == last for entry in outcome["stages"])]


def next_stage(outcome: dict, stage_names: tuple[str, ...]) -> str:
    """The first of the kind's stages the instrument has no entry for."""
    done = {entry["stage"] for entry in outcome["stages"]}
    return next(name for name in stage_names if name not in done)


def plan_resume(outcomes: list[dict], stage_names: tuple[str, ...], size: int) -> list[ResumeBatch]:
    """Batches of at most `size` incomplete instruments per (timeframe, stage they restart at), in plan order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome["timeframe"], next_stage(outcome, stage_names)), []).append(outcome)
    return [ResumeBatch(timeframe, first, [o["symbol"] for o in chunk],
                        {o["symbol"]: {"stages": list(o["stages"]), "failed": o["failed"]} for o in chunk})
            for (timeframe, first), members in groups.items()
            for chunk in (members[start:start + size] for start in range(0, len(members), size))]


def resume_run(engine: Engine, client: redis.Redis, run_id: str, why: str) -> str:
    """Resume a STARTED run from its records: "resumed"; "failed" once it was resumed RUN_RESUME_LIMIT
    times (lock freed); "left" when it is not STARTED any more (finished, cancelled) or has no row.

    `why` says what was lost, for the log and, past the limit, the run's error. Relative ranges
    (days, hours, bars) are resolved again, ending now: a resumed instrument fetches up to now.
    """
    settings = get_settings()
    with engine.connect() as conn:
        row = records.read_run(conn, run_id)
        progress = records.read_stage_progress(conn, run_id)
    if row is None or row["state"] != "STARTED":
        return "left"
    kind, scope, priority, batches = row["kind"], row["scope"], row["priority"], row["batches"] or []
    # One resume at a time: a second finder (an overlapping find_lost) within the quiet period leaves it.
    with engine.begin() as conn:
        resumes = records.claim_resume(conn, run_id, settings.lost_run_after_s)
    if resumes is None:
        return "left"
    holder = claim_run(client, request_of(kind, scope), run_id)
    if holder is not None:  # its lock was freed and taken by another run of this kind and scope
        error = {"instrument": "*", "stage": "pipeline",
                 "error": f"messages lost: {why}; not resumed: run {holder} of the same kind and scope is going"}
        with engine.begin() as conn:
            records.fail_run_row(conn, run_id, [error])
        log.warning("run %s failed: %s", run_id, error["error"])
        return "failed"
    if resumes > settings.run_resume_limit:
        error = {"instrument": "*", "stage": "pipeline",
                 "error": f"messages lost: {why}; resumed {resumes - 1} times (RUN_RESUME_LIMIT)"}
        with engine.begin() as conn:
            records.fail_run_row(conn, run_id, [error])
        release_run(client, kind, scope, run_id)
        log.warning("run %s failed: %s", run_id, error["error"])
        return "failed"
    stage_names = KIND_STAGES[kind]
    todo = incomplete(batches, stage_names, record_outcomes(batches, stage_names, progress))
    planned = plan_resume(todo, stage_names, settings.pipeline_batch_size)
    with engine.begin() as conn:
        first = records.append_batches(conn, run_id, [[instrument_label(symbol, b.timeframe) for symbol in b.symbols]
                                                      for b in planned])
    if first is None:  # finished or cancelled since the read
        return "left"
    exchange = scope_exchange(scope, settings.exchange)
    now_ms = int(time.time() * 1000)
    chains = [batch_chain(new_carry(run_id, exchange, b.symbols, b.timeframe, resolve_range(scope, b.timeframe, now_ms),
                                    b.outcomes), first + index, kind, priority, b.first)
              for index, b in enumerate(planned)]
    # With every instrument complete (only the finish was lost) the finish alone runs.
    dispatch(chains, finish_signature(run_id, kind, scope, priority))
    restarts = Counter(b.first for b in planned for _ in b.symbols)
    log.warning("run %s resumed from its records (%d of %d): %s; %d instrument(s) restart at %s", run_id, resumes,
                settings.run_resume_limit, why, len(todo),
                ", ".join(f"{stage} ({count})" for stage, count in restarts.items()) or "its finish")
    return "resumed"
