"""Pipeline stages: the carry passed along a chain, and recording each stage's outcome."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from sqlalchemy import text

from services.core.db import get_engine

__all__ = ["STAGE_TASKS", "new_carry", "run_stage", "instrument_label"]

log = logging.getLogger(__name__)

# Stage name → the task (by name) that runs it on its own worker's queue.
STAGE_TASKS = {
    "ohlc": "ingest.stage.ohlc",
    "backfill": "ingest.stage.backfill",
    "indicators": "indicators.stage.indicators",
    "ema": "indicators.stage.ema",
    "regime": "indicators.stage.regime",
    "patterns": "indicators.stage.patterns",
    "levels": "indicators.stage.levels",
    "signals": "signals.stage.signals",
}


def instrument_label(symbol: str, timeframe: str) -> str:
    return f"{symbol} {timeframe}"


def new_carry(run_id: str, symbol: str, timeframe: str, params: dict) -> dict:
    """What travels down one instrument's chain: who it is, and what happened so far."""
    return {"run_id": run_id, "symbol": symbol, "timeframe": timeframe, "params": params,
            "stages": [], "failed": None}


def _record(run_id: str, label: str, entry: dict) -> None:
    # One row per stage as it finishes, so a status poll shows progress; rows, not one
    # shared JSON document, so a thousand instruments never queue on one row lock.
    with get_engine().begin() as conn:
        conn.execute(text("""
            INSERT INTO pipeline_stage_results (run_id, instrument, stage, result)
            VALUES (:id, :label, :stage, CAST(:entry AS jsonb))
            ON CONFLICT (run_id, instrument, stage) DO UPDATE SET result = EXCLUDED.result, recorded_at = now()"""),
            {"id": run_id, "label": label, "stage": entry["stage"], "entry": json.dumps(entry)})


def run_stage(carry: dict, stage: str, work: Callable[[str, str, dict], dict]) -> dict:
    """Run `work(symbol, timeframe, params)` unless an earlier stage failed; never raises.

    A failure is caught and carried to the end of the chain, so one instrument's
    failure is reported by name while the other instruments' chains complete.
    """
    label = instrument_label(carry["symbol"], carry["timeframe"])
    if carry["failed"]:
        entry = {"stage": stage, "status": "skipped", "reason": f"{carry['failed']['stage']} failed"}
    else:
        started = time.monotonic()
        try:
            result = work(carry["symbol"], carry["timeframe"], carry["params"])
            entry = {"stage": stage, "status": "ok", "seconds": round(time.monotonic() - started, 3), **result}
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.error("run %s: %s %s failed: %s", carry["run_id"], label, stage, error)
            entry = {"stage": stage, "status": "failed", "seconds": round(time.monotonic() - started, 3),
                     "error": error}
            carry["failed"] = {"stage": stage, "error": error}
    carry["stages"].append(entry)
    _record(carry["run_id"], label, entry)
    return carry
