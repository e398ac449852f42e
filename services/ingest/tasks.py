"""Ingest Celery tasks: thin wrappers over the fetching use cases."""

from __future__ import annotations

import logging

from services.core.celery_app import app
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.exceptions import ConfigurationError, RetryableSourceError, SourceError
from services.core.pipeline.chain import per_instrument, register_stage
from services.core.store.instruments import active_universe
from services.core.timeparse import parse_instant_ms
from services.ingest import fetching, market_sync, store
from services.ingest import imports as _imports  # noqa: F401 - registers ingest.import_file (API uploads)
from services.ingest.context import IngestContext, worker_context

__all__ = ["sync_instrument", "sync_all", "sync_markets_task", "backfill_range", "repair_failed_windows",
           "ohlc_stage", "backfill_stage", "prune_ledger"]

log = logging.getLogger(__name__)

# The exchange as a whole unreachable (its clock cannot be read) is retried by
# Celery; per-window failures are already retried inside and ledgered.
_RETRY = {"autoretry_for": (RetryableSourceError,), "retry_backoff": 5, "retry_backoff_max": 300,
          "retry_jitter": True, "max_retries": 5}


@app.task(name="ingest.sync_instrument", **_RETRY)
def sync_instrument(symbol: str, timeframe: str) -> dict:
    """Bring one instrument up to date; returns counts and failed windows."""
    report = fetching.sync_instrument(worker_context(), symbol, timeframe, get_settings().sync_lookback_bars)
    log.info("synced %s %s: %d candles in %d windows, %d rejected, %d failed windows",
             symbol, timeframe, report.candles, report.windows, report.rejected, len(report.failed))
    return report.as_dict()


@app.task(name="ingest.sync_all")
def sync_all() -> list[str]:
    """Queue a sync of every active instrument in each of its timeframes; returns their task ids."""
    with get_engine().connect() as conn:
        universe = active_universe(conn, get_settings().exchange)
    return [sync_instrument.delay(symbol, timeframe).id
            for symbol, timeframes in universe.items() for timeframe in timeframes]


@app.task(name="ingest.sync_markets", **_RETRY)
def sync_markets_task() -> dict:
    """Record the exchange's market list; retire instruments it no longer lists, add what MARKETS_AUTO_ADD names."""
    settings = get_settings()
    ctx = worker_context()
    return market_sync.sync_markets(ctx.source, ctx.engine, settings.auto_add_rule, settings.timeframes).as_dict()


@app.task(name="ingest.backfill", **_RETRY)
def backfill_range(symbol: str, timeframe: str, since: str, until: str | None = None) -> dict:
    """Backfill [since, until) for one instrument (ISO dates or ms)."""
    report = fetching.backfill(worker_context(), symbol, timeframe, parse_instant_ms(since),
                               parse_instant_ms(until) if until else None)
    return report.as_dict()


@app.task(name="ingest.repair_failed_windows", **_RETRY)
def repair_failed_windows(limit: int = 500) -> list[dict]:
    """Re-fetch windows the ledger marks failed or gappy."""
    return fetching.repair_windows(worker_context(), limit=limit)


def _stage_outcome(report: fetching.RunReport) -> dict | Exception:
    """A sync or backfill as a pipeline stage: its counts, or a failure if any window failed."""
    if report.failed:
        first = report.failed[0]
        return SourceError(f"{len(report.failed)} of {report.windows} fetch window(s) failed "
                           f"(ledgered for repair); first: {first['error']}")
    return {"candles": report.candles, "windows": report.windows, "rejected": report.rejected,
            "missing": report.missing}


def _stage_result(report: fetching.RunReport) -> dict:
    outcome = _stage_outcome(report)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _fetch_context(exchange: str) -> IngestContext:
    """The worker's source, which fetches from EXCHANGE: the pipeline runs fetch stages only on its instruments."""
    settings = get_settings()
    if exchange != settings.exchange:
        raise ConfigurationError(f"this worker fetches from {settings.exchange}, not {exchange}")
    return worker_context()


def _sync_batch(symbols: list[str], timeframe: str, exchange: str) -> dict[str, dict | Exception]:
    """Sync the batch's instruments, fetched concurrently, stored in one transaction."""
    settings = get_settings()
    try:
        reports = fetching.sync_batch(_fetch_context(exchange), symbols, timeframe, settings.sync_lookback_bars,
                                      settings.ingest_fetch_threads)
    except Exception as exc:  # the clock or the database: every instrument of the batch waits on it
        return dict.fromkeys(symbols, exc)
    return {symbol: report if isinstance(report, Exception) else _stage_outcome(report)
            for symbol, report in reports.items()}


def _backfill(symbol: str, timeframe: str, exchange: str, since: str, until: str | None = None) -> dict:
    """Backfill the carried instrument over [since, until)."""
    return _stage_result(fetching.backfill(_fetch_context(exchange), symbol, timeframe, parse_instant_ms(since),
                                           parse_instant_ms(until) if until else None))


ohlc_stage = register_stage("ohlc", _sync_batch)
backfill_stage = register_stage("backfill", per_instrument(_backfill))


@app.task(name="ingest.prune_ledger")
def prune_ledger() -> dict:
    """Delete ok and empty fetch-ledger rows older than RUNS_RETENTION_DAYS (failed ones stay for repair)."""
    days = get_settings().runs_retention_days
    with get_engine().begin() as conn:
        deleted = store.delete_settled_windows(conn, days)
    log.info("pruned %d settled ledger row(s) older than %d days", deleted, days)
    return {"ledger_rows": deleted}
