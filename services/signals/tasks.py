"""Signal-queue Celery tasks: thin wrappers over signal generation."""

from __future__ import annotations

import logging

from services.core.celery_app import app
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.pipeline.chain import register_stage
from services.core.store.instruments import require_instrument, resolve_instruments
from services.core.timeparse import parse_instant
from services.signals.generation import refresh_signal_batch, refresh_signals

__all__ = ["generate_signals", "signals_stage"]

log = logging.getLogger(__name__)


@app.task(name="signals.generate")
def generate_signals(symbol: str, timeframe: str, since: str | None = None) -> dict:
    """Run every strategy on bars not yet processed; returns how many signals were created."""
    settings = get_settings()
    with get_engine().begin() as conn:
        instrument_id = require_instrument(conn, settings.exchange, symbol)
        result = refresh_signals(conn, instrument_id, timeframe, since=parse_instant(since))
    log.info("%s %s: %s", symbol, timeframe, result)
    return {"symbol": symbol, "timeframe": timeframe, **result}


def _signal_batch(symbols: list[str], timeframe: str, since: str | None = None) -> dict[str, dict | Exception]:
    """Every strategy on the batch's new bars, in one pass and one write."""
    settings = get_settings()
    try:
        with get_engine().begin() as conn:
            instruments, unknown = resolve_instruments(conn, settings.exchange, symbols)
            outcomes = refresh_signal_batch(conn, instruments, timeframe, since=parse_instant(since))
    except Exception as exc:  # the database: every instrument of the batch waits on it
        return dict.fromkeys(symbols, exc)
    return {**unknown, **outcomes}


signals_stage = register_stage("signals", _signal_batch)
