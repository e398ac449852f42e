"""Indicator-queue Celery tasks: thin wrappers over the analysis use cases."""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.core.celery_app import app
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.exceptions import ConfigurationError
from services.core.pipeline.chain import in_one_transaction, per_instrument, register_stage
from services.core.pipeline.stages import STAGES
from services.core.store.instruments import require_instrument
from services.core.timeparse import parse_instant as _instant
from services.indicators import analysis
from services.indicators.batch import refresh_indicator_batch
from services.indicators.engine import IndicatorParams

__all__ = ["compute_indicators", "compute_ema_channel", "compute_regime", "detect_patterns", "find_levels",
           "indicators_batch", "indicators_stage", "ema_stage", "regime_stage", "patterns_stage", "levels_stage"]

log = logging.getLogger(__name__)


def _run(symbol: str, timeframe: str, exchange: str | None, work: Callable) -> dict:
    """Resolve the instrument (on EXCHANGE unless named), run `work(conn, instrument_id)` in one transaction,
    tag the result."""
    with get_engine().begin() as conn:
        instrument_id = require_instrument(conn, exchange or get_settings().exchange, symbol)
        result = work(conn, instrument_id)
    log.info("%s %s: %s", symbol, timeframe, result)
    return {"symbol": symbol, "timeframe": timeframe, **result}


def _params() -> IndicatorParams:
    return IndicatorParams.from_mapping(get_settings().indicator_params)


try:  # a bad INDICATOR_PARAMS stops the worker at start, not every stage of every run
    _params()
except ValueError as exc:
    raise ConfigurationError(f"INDICATOR_PARAMS: {exc}") from None


def indicators_batch(symbols: list[str], timeframe: str, exchange: str | None = None,
                     since: str | None = None) -> dict[str, dict | Exception]:
    """Every indicator and the regime for a batch: carried from each stored state, or from a warm-up."""
    try:
        start = _instant(since)
    except ValueError as exc:  # the run validator refuses these; never let one escape as the batch's error
        return {symbol: exc for symbol in symbols}
    outcomes = refresh_indicator_batch(get_engine(), exchange or get_settings().exchange, symbols, timeframe, _params(),
                                       since=start)
    for symbol, outcome in outcomes.items():
        log.info("%s %s: %s", symbol, timeframe, outcome)
    return outcomes


@app.task(name="indicators.compute")
def compute_indicators(symbol: str, timeframe: str, since: str | None = None, exchange: str | None = None) -> dict:
    """Every indicator and the regime, for bars not yet computed (or from `since`)."""
    outcome = indicators_batch([symbol], timeframe, exchange, since)[symbol]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


@app.task(name="indicators.ema_channel")
def compute_ema_channel(symbol: str, timeframe: str, since: str | None = None, exchange: str | None = None) -> dict:
    """Only the EMA channel (EMA of highs and of lows)."""
    return _run(symbol, timeframe, exchange, lambda conn, i: analysis.refresh_indicators(
        conn, i, timeframe, _params(), columns=analysis.CHANNEL_COLUMNS, stage=STAGES["ema"].watermark,
        since=_instant(since)))


@app.task(name="indicators.regime")
def compute_regime(symbol: str, timeframe: str, since: str | None = None, exchange: str | None = None) -> dict:
    """Re-derive the regime from stored indicator values."""
    return _run(symbol, timeframe, exchange, lambda conn, i: analysis.refresh_regime(
        conn, i, timeframe, _params(), since=_instant(since)))


@app.task(name="indicators.patterns")
def detect_patterns(symbol: str, timeframe: str, since: str | None = None, exchange: str | None = None) -> dict:
    """Candlestick patterns on closed bars."""
    return _run(symbol, timeframe, exchange, lambda conn, i: analysis.refresh_patterns(conn, i, timeframe,
                                                                              since=_instant(since)))


@app.task(name="indicators.levels")
def find_levels(symbol: str, timeframe: str, exchange: str | None = None) -> dict:
    """Support and resistance levels from recent closed bars."""
    lookback = get_settings().levels_lookback_bars
    return _run(symbol, timeframe, exchange, lambda conn, i: analysis.refresh_levels(conn, i, timeframe, lookback))


indicators_stage = register_stage("indicators", indicators_batch)
ema_stage = register_stage("ema", per_instrument(compute_ema_channel))
regime_stage = register_stage("regime", per_instrument(compute_regime))
def _pattern_batch(symbols: list[str], timeframe: str, exchange: str,
                   since: str | None = None) -> dict[str, dict | Exception]:
    """Candlestick patterns on the batch's new closed bars, in one pass and one write."""
    return in_one_transaction(exchange, symbols, lambda conn, instruments: analysis.refresh_pattern_batch(
        conn, instruments, timeframe, since=_instant(since)))


patterns_stage = register_stage("patterns", _pattern_batch)
levels_stage = register_stage("levels", per_instrument(find_levels))
