"""Signal-queue Celery tasks: thin wrappers over signal generation."""

from __future__ import annotations

import logging

from services.core.celery_app import app
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.pipeline.chain import in_one_transaction, register_stage
from services.core.store.instruments import require_instrument
from services.core.timeparse import parse_instant
from services.signals.generation import refresh_signal_batch, refresh_signals

__all__ = ["generate_signals", "signals_batch", "signals_stage"]

log = logging.getLogger(__name__)


@app.task(name="signals.generate")
def generate_signals(symbol: str, timeframe: str, since: str | None = None, exchange: str | None = None) -> dict:
    """Run every strategy on bars not yet processed (of the instrument on EXCHANGE unless named); returns how many
    signals were created."""
    with get_engine().begin() as conn:
        instrument_id = require_instrument(conn, exchange or get_settings().exchange, symbol)
        result = refresh_signals(conn, instrument_id, timeframe, since=parse_instant(since))
    log.info("%s %s: %s", symbol, timeframe, result)
    return {"symbol": symbol, "timeframe": timeframe, **result}


def signals_batch(symbols: list[str], timeframe: str, exchange: str,
                  since: str | None = None) -> dict[str, dict | Exception]:
    """Every strategy on the batch's new bars, in one pass and one write."""
    return in_one_transaction(exchange, symbols, lambda conn, instruments: refresh_signal_batch(
        conn, instruments, timeframe, since=parse_instant(since)))


signals_stage = register_stage("signals", signals_batch)
