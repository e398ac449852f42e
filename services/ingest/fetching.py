"""Ingest use cases: fetch a window, backfill a range, sync the latest bars, repair failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine

from services.core.exceptions import PermanentSourceError, RetryableSourceError
from services.core.store.instruments import ensure_instrument
from services.core.store.watermarks import rewind_watermarks
from services.core.timeframe import Timeframe
from services.core.timeparse import ms_to_datetime
from services.ingest import store
from services.ingest.retry import RetriesExhausted, RetryPolicy, call_with_retries
from services.ingest.sources.base import CandleSource
from services.ingest.store import WindowResult
from services.ingest.validate import validate_candles
from services.ingest.windows import align_down, expected_bars, is_closed, plan_windows

__all__ = ["IngestContext", "WindowResult", "RunReport", "fetch_window", "backfill", "sync_instrument",
           "repair_windows"]

log = logging.getLogger(__name__)


@dataclass
class IngestContext:
    """What every ingest use case needs: where candles come from and where they go."""

    source: CandleSource
    engine: Engine
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] | None = None


@dataclass
class RunReport:
    """Totals of a sync, backfill or repair, with every failed window named."""

    symbol: str
    timeframe: str
    windows: int = 0
    candles: int = 0
    rejected: int = 0
    missing: int = 0
    failed: list[dict] = field(default_factory=list)

    def add(self, result: WindowResult) -> None:
        self.windows += 1
        self.candles += result.candles
        self.rejected += result.rejected
        self.missing += result.missing
        if result.status == "failed":
            self.failed.append({"start_ms": result.start_ms, "end_ms": result.end_ms, "error": result.error})

    def as_dict(self) -> dict:
        return asdict(self)


def _download(ctx: IngestContext, symbol: str, tf: Timeframe, start_ms: int, end_ms: int) -> tuple[list, int]:
    # Bars rounded up: a partial last bar still needs its candle.
    limit = min(ctx.source.capabilities.max_candles, max(1, -(-(end_ms - start_ms) // tf.ms)))
    describe = f"{ctx.source.name} {symbol} {tf} [{start_ms}, {end_ms})"
    kwargs = {"sleep": ctx.sleep} if ctx.sleep else {}
    return call_with_retries(
        lambda: ctx.source.fetch_candles(symbol, tf.name, start_ms, limit), ctx.policy, describe, **kwargs
    )


def _in_window(row: object, start_ms: int, end_ms: int) -> bool:
    # Rows outside the window belong to a neighbouring window, which fetches them itself.
    ts = row[0] if isinstance(row, (list, tuple)) and row else None
    return not isinstance(ts, (int, float)) or start_ms <= ts < end_ms


def fetch_window(ctx: IngestContext, instrument_id: int, symbol: str, tf: Timeframe,
                 start_ms: int, end_ms: int, now_ms: int) -> WindowResult:
    """Download, validate and store one window; the ledger records the outcome either way.

    Transient failures are retried with backoff and, when exhausted, recorded as a
    failed window for the repair task. Permanent failures are recorded, then raised.
    """
    expected = expected_bars(start_ms, end_ms, tf, now_ms)
    try:
        rows, attempts = _download(ctx, symbol, tf, start_ms, end_ms)
    except (RetriesExhausted, PermanentSourceError) as exc:
        attempts = getattr(exc, "attempts", 1)
        result = WindowResult(start_ms, end_ms, "failed", 0, 0, expected, attempts, str(exc)[:1000])
        _record(ctx, instrument_id, tf, result)
        log.error("window failed: %s", exc)
        if isinstance(exc, PermanentSourceError):
            raise
        return result
    rows = [row for row in rows if _in_window(row, start_ms, end_ms)]
    batch = validate_candles(rows, tf, now_ms)
    # A refused or duplicated row fills no bar: only good rows count, so a window with
    # bad data stays "gaps" and the repair task fetches it again.
    missing = max(0, expected - len(batch.good))
    status = "empty" if not rows else ("gaps" if missing else "ok")
    result = WindowResult(start_ms, end_ms, status, len(batch.good), len(batch.rejected), missing, attempts)
    with ctx.engine.begin() as conn:
        written = store.upsert_candles(conn, instrument_id, tf.name,
                                       ((*bar, is_closed(bar[0], tf, now_ms)) for bar in batch.good))
        if written:
            rewind_watermarks(conn, instrument_id, tf, batch.good[0][0])
        store.store_rejections(conn, instrument_id, tf.name, batch.rejected)
        store.record_window(conn, instrument_id, tf.name, result)
    if batch.rejected:
        log.warning("%s %s: rejected %d candle(s): %s", symbol, tf, len(batch.rejected),
                    sorted({r.reason for r in batch.rejected}))
    return result


def _record(ctx: IngestContext, instrument_id: int, tf: Timeframe, result: WindowResult) -> None:
    with ctx.engine.begin() as conn:
        store.record_window(conn, instrument_id, tf.name, result)


def _instrument(ctx: IngestContext, symbol: str, tf: Timeframe) -> int:
    with ctx.engine.begin() as conn:
        return ensure_instrument(conn, ctx.source.name, symbol, tf.name)


def _now(ctx: IngestContext) -> int:
    try:
        return call_with_retries(ctx.source.now_ms, ctx.policy, f"{ctx.source.name} clock",
                                 **({"sleep": ctx.sleep} if ctx.sleep else {}))[0]
    except RetryableSourceError as exc:
        raise RetryableSourceError(f"cannot read {ctx.source.name}'s clock: {exc}") from exc


def _fetch_windows(ctx: IngestContext, instrument_id: int, symbol: str, tf: Timeframe,
                   windows: list[tuple[int, int]], now_ms: int,
                   progress: Callable[[WindowResult], None] | None) -> RunReport:
    report = RunReport(symbol, tf.name)
    for start_ms, end_ms in windows:
        result = fetch_window(ctx, instrument_id, symbol, tf, start_ms, end_ms, now_ms)
        report.add(result)
        if progress:
            progress(result)
    return report


def backfill(ctx: IngestContext, symbol: str, timeframe: str, since_ms: int, until_ms: int | None = None,
             progress: Callable[[WindowResult], None] | None = None) -> RunReport:
    """Fetch [since, until) in windows of the exchange's request limit; every window is ledgered."""
    tf = Timeframe.parse(timeframe)
    now_ms = _now(ctx)
    until_ms = min(until_ms or now_ms + 1, now_ms + 1)
    if since_ms >= until_ms:
        raise ValueError(f"empty range: since {since_ms} is not before until {until_ms}")
    caps = ctx.source.capabilities
    earliest = _earliest_served(ctx, tf, now_ms)
    if not caps.full_history and since_ms < earliest:
        raise PermanentSourceError(
            f"{ctx.source.name} serves only its latest {caps.max_candles} {tf} candles "
            f"(from {ms_to_datetime(earliest).isoformat()}); choose a later --since "
            f"or an exchange with full history"
        )
    windows = plan_windows(since_ms, until_ms, tf, caps.max_candles)
    return _fetch_windows(ctx, _instrument(ctx, symbol, tf), symbol, tf, windows, now_ms, progress)


def sync_instrument(ctx: IngestContext, symbol: str, timeframe: str, lookback_bars: int = 500) -> RunReport:
    """Fetch from the bar after the newest stored closed candle up to the open bar."""
    tf = Timeframe.parse(timeframe)
    now_ms = _now(ctx)
    instrument_id = _instrument(ctx, symbol, tf)
    with ctx.engine.connect() as conn:
        last = store.last_closed_ts(conn, instrument_id, tf.name)
    since_ms = last + tf.ms if last is not None else align_down(now_ms, tf) - lookback_bars * tf.ms
    lost = _beyond_history(ctx, instrument_id, tf, since_ms, now_ms)
    if lost is not None:
        since_ms = lost.end_ms
    windows = plan_windows(since_ms, align_down(now_ms, tf) + tf.ms, tf, ctx.source.capabilities.max_candles)
    report = _fetch_windows(ctx, instrument_id, symbol, tf, windows, now_ms, None)
    if lost is not None:
        report.add(lost)
    return report


def _earliest_served(ctx: IngestContext, tf: Timeframe, now_ms: int) -> int:
    """Open time of the oldest bar a recent-only source still serves (its latest `max_candles`)."""
    return align_down(now_ms, tf) - (ctx.source.capabilities.max_candles - 1) * tf.ms


def _beyond_history(ctx: IngestContext, instrument_id: int, tf: Timeframe, since_ms: int,
                    now_ms: int) -> WindowResult | None:
    """After an outage longer than a recent-only exchange remembers, the bars in between are
    gone: ledger them as one failed window (so the run reports it) and sync from what is left."""
    caps = ctx.source.capabilities
    earliest = _earliest_served(ctx, tf, now_ms)
    if caps.full_history or since_ms >= earliest:
        return None
    lost = WindowResult(since_ms, earliest, "failed", 0, 0, (earliest - since_ms) // tf.ms, 0,
                        f"{ctx.source.name} serves only its latest {caps.max_candles} {tf} candles; "
                        f"bars before {ms_to_datetime(earliest).isoformat()} cannot be fetched from it")
    _record(ctx, instrument_id, tf, lost)
    log.error("%s %s: %s", tf, instrument_id, lost.error)
    return lost


def repair_windows(ctx: IngestContext, max_fetches: int = 30, limit: int = 500) -> list[dict]:
    """Re-fetch failed windows and windows with gaps; returns each window's new outcome.

    A window is given up after `max_fetches` fetches (a month of daily repairs): bars an
    exchange never had stay reported as gaps in the ledger instead of being asked for forever.
    """
    with ctx.engine.connect() as conn:
        todo = store.windows_to_repair(conn, ctx.source.name, max_fetches, limit)
    if not todo:
        return []
    now_ms = _now(ctx)
    # The ledger holds names; each distinct one is parsed once, not once per window.
    timeframes = {name: Timeframe.parse(name) for name in {window["timeframe"] for window in todo}}
    outcomes = []
    for window in todo:
        try:
            result = fetch_window(ctx, window["instrument_id"], window["symbol"], timeframes[window["timeframe"]],
                                  window["start_ms"], window["end_ms"], now_ms)
            outcome = {"status": result.status, "candles": result.candles, "error": result.error}
        except PermanentSourceError as exc:
            outcome = {"status": "failed", "candles": 0, "error": str(exc)}
        outcomes.append({"symbol": window["symbol"], "timeframe": window["timeframe"],
                         "start_ms": window["start_ms"], "end_ms": window["end_ms"],
                         "was": window["status"], **outcome})
    return outcomes
