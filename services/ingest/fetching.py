"""Ingest use cases: fetch a window, backfill a range, sync the latest bars, repair failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from sqlalchemy import Connection, Engine

from services.core.exceptions import PermanentSourceError, RetryableSourceError
from services.core.store.instruments import ensure_instrument
from services.core.store.marketdata import newest_closed_ts
from services.core.store.watermarks import rewind_watermarks
from services.core.timeframe import Timeframe
from services.core.timeparse import ms_to_datetime
from services.ingest import store
from services.ingest.retry import RetriesExhausted, RetryPolicy, call_with_retries
from services.ingest.sources.base import CandleSource
from services.ingest.store import WindowResult
from services.ingest.validate import Rejection, validate_candles
from services.ingest.windows import align_down, expected_bars, is_closed, plan_windows

__all__ = ["IngestContext", "WindowResult", "RunReport", "FetchedWindow", "download_window", "store_windows",
           "fetch_window", "backfill", "sync_batch", "sync_instrument", "repair_windows"]

log = logging.getLogger(__name__)


@dataclass
class IngestContext:
    """What every ingest use case needs: where candles come from and where they go."""

    source: CandleSource
    engine: Engine
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] | None = None
    # Under Celery an unreadable exchange clock is the task's to retry (with its own backoff);
    # a second loop of sleeps inside the worker would only hold the worker process. The CLI,
    # with no Celery around it, retries here.
    retry_clock: bool = True


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


@dataclass
class FetchedWindow:
    """One window downloaded and validated, not yet stored: what `store_windows` writes."""

    instrument_id: int
    symbol: str
    result: WindowResult
    good: list[tuple] = field(default_factory=list)  # (ts_ms, o, h, l, c, v, is_closed)
    rejected: list[Rejection] = field(default_factory=list)
    error: Exception | None = None  # a failure retrying cannot fix: the instrument's outcome


def download_window(ctx: IngestContext, instrument_id: int, symbol: str, tf: Timeframe,
                    start_ms: int, end_ms: int, now_ms: int) -> FetchedWindow:
    """Download and validate one window; touches no database, so windows can be fetched in parallel.

    Transient failures are retried with backoff and, when exhausted, become a failed window
    for the repair task; a permanent failure becomes a failed window carrying the error.
    """
    expected = expected_bars(start_ms, end_ms, tf, now_ms)
    try:
        rows, attempts = _download(ctx, symbol, tf, start_ms, end_ms)
    except Exception as exc:  # RetriesExhausted, PermanentSourceError, or a bug: ledgered either way
        attempts = getattr(exc, "attempts", 1)
        log.error("window failed: %s", exc)
        failed = WindowResult(start_ms, end_ms, "failed", 0, 0, expected, attempts, str(exc)[:1000])
        return FetchedWindow(instrument_id, symbol, failed,
                             error=None if isinstance(exc, RetriesExhausted) else exc)
    rows = [row for row in rows if _in_window(row, start_ms, end_ms)]
    batch = validate_candles(rows, tf, now_ms)
    # A refused or duplicated row fills no bar: only good rows count, so a window with
    # bad data stays "gaps" and the repair task fetches it again.
    missing = max(0, expected - len(batch.good))
    status = "empty" if not rows else ("gaps" if missing else "ok")
    result = WindowResult(start_ms, end_ms, status, len(batch.good), len(batch.rejected), missing, attempts)
    if batch.rejected:
        log.warning("%s %s: rejected %d candle(s): %s", symbol, tf, len(batch.rejected),
                    sorted({r.reason for r in batch.rejected}))
    return FetchedWindow(instrument_id, symbol, result, [(*bar, is_closed(bar[0], tf, now_ms)) for bar in batch.good],
                         batch.rejected)


def store_windows(conn: Connection, tf: Timeframe, windows: list[FetchedWindow]) -> int:
    """Write downloaded windows in one transaction: every candle in one upsert, then rejections and
    ledger rows. Returns candles inserted or replaced."""
    written = store.upsert_candle_batch(conn, tf.name, ((w.instrument_id, *bar) for w in windows for bar in w.good))
    for window in windows:
        if written and window.good:
            # Bars older than a stage's watermark (a backfill, a repair) must be analysed again;
            # for a sync, whose bars all follow the watermark, this changes nothing.
            rewind_watermarks(conn, window.instrument_id, tf, window.good[0][0])
        store.store_rejections(conn, window.instrument_id, tf.name, window.rejected)
        store.record_window(conn, window.instrument_id, tf.name, window.result)
    return written


def fetch_window(ctx: IngestContext, instrument_id: int, symbol: str, tf: Timeframe,
                 start_ms: int, end_ms: int, now_ms: int) -> WindowResult:
    """Download, validate and store one window; the ledger records the outcome either way.

    A permanent failure is recorded, then raised.
    """
    window = download_window(ctx, instrument_id, symbol, tf, start_ms, end_ms, now_ms)
    with ctx.engine.begin() as conn:
        store_windows(conn, tf, [window])
    if window.error is not None:
        raise window.error
    return window.result


def _instrument(ctx: IngestContext, symbol: str, tf: Timeframe) -> int:
    ctx.source.check_instrument(symbol, tf.name)  # an unknown symbol is refused before it is registered
    with ctx.engine.begin() as conn:
        return ensure_instrument(conn, ctx.source.name, symbol, tf.name)


def _now(ctx: IngestContext) -> int:
    policy = ctx.policy if ctx.retry_clock else RetryPolicy(retries=0)
    try:
        return call_with_retries(ctx.source.now_ms, policy, f"{ctx.source.name} clock",
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


def sync_batch(ctx: IngestContext, symbols: list[str], timeframe: str, lookback_bars: int = 500,
               concurrency: int = 8) -> dict[str, RunReport | Exception]:
    """Bring instruments of one timeframe up to date: per symbol its report, or what stopped it.

    Each fetches from the bar after its newest stored closed candle up to the open bar.
    The windows are downloaded by `concurrency` threads (INGEST_FETCH_THREADS) (every request still takes its
    slot from the shared rate limit, reserved several per round trip), then all of them are stored in one transaction.
    An unreadable exchange clock or a database error raises for the whole batch.
    """
    tf = Timeframe.parse(timeframe)
    unserved = _unserved(ctx, symbols, tf)
    symbols = [symbol for symbol in symbols if symbol not in unserved]
    if not symbols:
        return unserved
    now_ms = _now(ctx)
    with ctx.engine.begin() as conn:
        ids = {symbol: ensure_instrument(conn, ctx.source.name, symbol, tf.name) for symbol in symbols}
        newest = newest_closed_ts(conn, list(ids.values()), tf.name)
    reports = {symbol: RunReport(symbol, tf.name) for symbol in symbols}
    lost: list[tuple[str, WindowResult]] = []
    jobs: list[tuple[str, int, int]] = []
    for symbol in symbols:
        last = newest.get(ids[symbol])
        since_ms = last + tf.ms if last is not None else align_down(now_ms, tf) - lookback_bars * tf.ms
        gone = _lost_window(ctx, tf, since_ms, now_ms)
        if gone is not None:
            lost.append((symbol, gone))
            since_ms = gone.end_ms
        windows = plan_windows(since_ms, align_down(now_ms, tf) + tf.ms, tf, ctx.source.capabilities.max_candles)
        jobs += [(symbol, start_ms, end_ms) for start_ms, end_ms in windows]
    # One request per window: announced, so a shared limiter reserves their slots a few at a time.
    with ctx.source.ahead(len(jobs)), \
            ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs))), thread_name_prefix="fetch") as pool:
        fetched = list(pool.map(lambda job: download_window(ctx, ids[job[0]], job[0], tf, job[1], job[2], now_ms),
                                jobs))
    with ctx.engine.begin() as conn:
        store_windows(conn, tf, fetched)
        for symbol, gone in lost:
            store.record_window(conn, ids[symbol], tf.name, gone)
    stopped: dict[str, Exception] = {}
    for window in fetched:
        reports[window.symbol].add(window.result)
        if window.error is not None:
            stopped.setdefault(window.symbol, window.error)
    for symbol, gone in lost:
        reports[symbol].add(gone)
    return {**unserved, **{symbol: stopped.get(symbol, reports[symbol]) for symbol in symbols}}


def _unserved(ctx: IngestContext, symbols: list[str], tf: Timeframe) -> dict[str, Exception]:
    """The symbols the exchange does not serve in `tf`, each with the reason; never registered as instruments."""
    refused: dict[str, Exception] = {}
    for symbol in symbols:
        try:
            ctx.source.check_instrument(symbol, tf.name)
        except PermanentSourceError as exc:
            refused[symbol] = exc
    return refused


def sync_instrument(ctx: IngestContext, symbol: str, timeframe: str, lookback_bars: int = 500) -> RunReport:
    """Bring one instrument up to date (a batch of one); a permanent failure is raised."""
    outcome = sync_batch(ctx, [symbol], timeframe, lookback_bars, concurrency=1)[symbol]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _earliest_served(ctx: IngestContext, tf: Timeframe, now_ms: int) -> int:
    """Open time of the oldest bar a recent-only source still serves (its latest `max_candles`)."""
    return align_down(now_ms, tf) - (ctx.source.capabilities.max_candles - 1) * tf.ms


def _lost_window(ctx: IngestContext, tf: Timeframe, since_ms: int, now_ms: int) -> WindowResult | None:
    """After an outage longer than a recent-only exchange remembers, the bars in between are
    gone: one failed window for the ledger (so the run reports it); the sync goes on from
    what is left."""
    caps = ctx.source.capabilities
    earliest = _earliest_served(ctx, tf, now_ms)
    if caps.full_history or since_ms >= earliest:
        return None
    error = (f"{ctx.source.name} serves only its latest {caps.max_candles} {tf} candles; "
             f"bars before {ms_to_datetime(earliest).isoformat()} cannot be fetched from it")
    log.error("%s: %s", tf, error)
    return WindowResult(since_ms, earliest, "failed", 0, 0, (earliest - since_ms) // tf.ms, 0, error)


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
