"""Pipeline health from Postgres: runs, data freshness, rejected candles, failed fetches, signals."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine, Row, text

from services.core.pipeline.runs import FINISHED_STATES
from services.core.sessions import Sessions, trading_age, venue_sessions
from services.core.timeframe import Timeframe
from services.core.venues import UnknownVenue
from services.exporter.exposition import Chunk, render_families
from services.exporter.health import ScrapeHealth

__all__ = ["PipelineQuery", "PipelineCollector", "PipelineRefresher", "QUERIES", "FINAL_STATES", "data_age"]

# A finished run's states, core's list: a cancelled run is finished too (it alerts nobody).
FINAL_STATES = FINISHED_STATES
_INSTRUMENT = ["exchange", "symbol", "timeframe"]


@dataclass(frozen=True)
class PipelineQuery:
    """One cheap aggregate query and the metric families built from its rows; fails on its own.

    With `page`, the SQL reads `:page` instruments after instrument id `:after` and returns
    each one's id as `instrument_id`: it runs page after page, each statement in its own
    transaction under the timeout, so the timeout bounds a statement, not the instrument count.
    """

    collector: str
    sql: str
    families: Callable[[Sequence[Row]], Iterable[Metric]]
    page: int = 0


def _runs(rows: Sequence[Row]) -> Iterator[Metric]:
    runs = GaugeMetricFamily("candleflow_pipeline_runs",
                             "Pipeline runs on record (within RUNS_RETENTION_DAYS), by kind and state",
                             labels=["kind", "state"])
    success = GaugeMetricFamily("candleflow_pipeline_last_success_timestamp_seconds",
                                "When the last successful run of this kind finished", labels=["kind"])
    for row in rows:
        runs.add_metric([row.kind, row.state], row.runs)
        if row.state == "SUCCESS" and row.last_finished is not None:
            success.add_metric([row.kind], float(row.last_finished))
    yield from (runs, success)


def _last_run(rows: Sequence[Row]) -> Iterator[Metric]:
    state = GaugeMetricFamily("candleflow_pipeline_last_run_state",
                              "1 for the final state of the most recently finished run of each kind",
                              labels=["kind", "state"])
    for row in rows:
        for candidate in FINAL_STATES:
            state.add_metric([row.kind, candidate], 1 if row.state == candidate else 0)
    yield state


def _sessions(exchange: str) -> Sessions | None:
    """The venue's sessions for a stock venue (MIC); None for a 24/7 ccxt exchange."""
    try:
        return venue_sessions(exchange)
    except UnknownVenue:
        return None  # an exchange this release does not know (a renamed ccxt id): wall-clock, as before


def data_age(sessions: Sessions | None, newest_candle: float, length: int, now: float) -> float:
    """How long ago the newest closed candle closed: wall-clock on a 24/7 exchange; on a stock venue, in
    trading time (a Friday close is not stale on Saturday), each session a day for daily bars."""
    if sessions is None:
        return max(0.0, now - newest_candle - length)
    return max(0.0, trading_age(sessions, newest_candle, length, now))


def _freshness(rows: Sequence[Row]) -> Iterator[Metric]:
    age = GaugeMetricFamily("candleflow_data_age_seconds",
                            "Time since the newest closed candle closed; on a stock venue, trading time (closed "
                            "hours excluded, a session counted as a day for daily bars)", labels=_INSTRUMENT)
    signal = GaugeMetricFamily("candleflow_signal_last_timestamp_seconds",
                               "Bar time of the newest signal", labels=_INSTRUMENT)
    lengths: dict[str, int] = {}
    for row in rows:
        try:
            length = lengths.get(row.timeframe) or Timeframe.parse(row.timeframe).seconds
        except ValueError:
            continue  # no timeframe, or a malformed one in the table: not this exporter's to fix
        lengths[row.timeframe] = length
        labels = [row.exchange, row.symbol, row.timeframe]
        if row.newest_candle is not None:
            age.add_metric(labels, data_age(_sessions(row.exchange), float(row.newest_candle), length, float(row.now)))
        if row.newest_signal is not None:
            signal.add_metric(labels, float(row.newest_signal))
    # One series per timeframe, so alerts can speak in bars: age / on(timeframe) group_left timeframe length.
    timeframe = GaugeMetricFamily("candleflow_timeframe_seconds", "Length of one candle of the timeframe",
                                  labels=["timeframe"])
    for name, length in sorted(lengths.items()):
        timeframe.add_metric([name], length)
    yield from (age, signal, timeframe)


def _gauge_per_row(name: str, doc: str, labels: list[str]) -> Callable[[Sequence[Row]], Iterator[Metric]]:
    def families(rows: Sequence[Row]) -> Iterator[Metric]:
        family = GaugeMetricFamily(name, doc, labels=labels)
        for row in rows:
            family.add_metric([str(getattr(row, label)) for label in labels], float(row.value))
        yield family
    return families


# Every query is answered from an index (primary keys on (instrument, timeframe, ts), the
# pipeline_runs (kind, state), fetch_ledger status and signals ts indexes), so a read with
# thousands of instruments stays within a second; rejected_candles, which only grows with bad
# input, is the one table scanned.
QUERIES = (
    PipelineQuery("pipeline_runs", """
        SELECT kind, state, count(*) AS runs, extract(epoch FROM max(finished_at)) AS last_finished
          FROM pipeline_runs GROUP BY kind, state""", _runs),
    PipelineQuery("pipeline_last_run", """
        SELECT DISTINCT ON (kind) kind, state FROM pipeline_runs
         WHERE finished_at IS NOT NULL ORDER BY kind, finished_at DESC""", _last_run),
    # Two probes down a primary key per instrument and timeframe: 0.5 s for 10,000 instruments
    # on the 2-core VM, 1.5 s and more under load, hence pages (the LEFT JOIN keeps an
    # instrument without timeframes in its page, so a short page is the last one).
    PipelineQuery("data_freshness", """
        SELECT i.id AS instrument_id, i.exchange, i.symbol, tf.timeframe, extract(epoch FROM now()) AS now,
               extract(epoch FROM (SELECT max(c.ts) FROM candles c WHERE c.instrument_id = i.id
                                      AND c.timeframe = tf.timeframe AND c.is_closed)) AS newest_candle,
               extract(epoch FROM (SELECT max(s.ts) FROM signals s WHERE s.instrument_id = i.id
                                      AND s.timeframe = tf.timeframe)) AS newest_signal
          FROM (SELECT id, exchange, symbol, timeframes FROM instruments
                 WHERE active AND id > :after ORDER BY id LIMIT :page) AS i
          LEFT JOIN LATERAL unnest(i.timeframes) AS tf(timeframe) ON true""", _freshness, page=2000),
    # Rejects and signals by kind only: per instrument they would be thousands of series, and the
    # rows themselves are one query away in Postgres when an instrument needs a closer look.
    PipelineQuery("rejected_candles", """
        SELECT reason, count(*) AS value FROM rejected_candles GROUP BY reason""",
        _gauge_per_row("candleflow_rejected_candles", "Candles rejected by validation and kept, by reason",
                       ["reason"])),
    PipelineQuery("fetch_ledger", """
        SELECT i.exchange, i.symbol, l.timeframe, l.status, count(*) AS value
          FROM fetch_ledger l JOIN instruments i ON i.id = l.instrument_id
         WHERE l.status IN ('failed', 'gaps')
         GROUP BY i.exchange, i.symbol, l.timeframe, l.status""",
        _gauge_per_row("candleflow_fetch_windows_pending_repair",
                       "Fetch windows that failed or came back with gaps, awaiting the repair job",
                       [*_INSTRUMENT, "status"])),
    PipelineQuery("signals", """
        SELECT strategy, side, count(*) AS value FROM signals
         WHERE ts > now() - interval '24 hours' GROUP BY strategy, side""",
        _gauge_per_row("candleflow_signals_last_24h", "Signals on bars of the last 24 hours, by strategy and side",
                       ["strategy", "side"])),
)


_SERIALS = itertools.count()


@dataclass
class _Read:
    """One query's families from one read, and their exposition in each format scrapes asked for."""

    at: float
    families: list[Metric]
    rendered: dict[str, bytes] = field(default_factory=dict)  # content type → bytes
    serial: int = field(default_factory=lambda: next(_SERIALS))  # tells reads apart for the chunk cache


# Formats rendered ahead at each refresh: the classic text format and the OpenMetrics that
# Prometheus asks for from the start, then others scrapes ask for; a few at most, whatever
# Accept headers arrive.
_AHEAD = ("", "application/openmetrics-text;version=1.0.0")
_MAX_FORMATS = 4


class PipelineCollector:
    """Runs each query in its own short transaction under a statement timeout; a failing one is skipped.

    With `refresh_interval_s` 0 every scrape queries Postgres. Otherwise a `PipelineRefresher`
    thread calls `refresh()` on that interval and scrapes build their families from the latest
    rows: these figures change once an hour, while the queries grow with the instruments and
    would take most of a scrape's budget. Rows older than four intervals are no longer served.

    In that mode `refresh()` also renders the families to exposition text, for `exposition()`:
    with 10,000 instruments they are 40,000 samples, and formatting them took a scrape 300 ms.
    """

    def __init__(self, engine: Engine, health: ScrapeHealth, *, query_timeout_ms: int = 2000,
                 queries: Sequence[PipelineQuery] = QUERIES, refresh_interval_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._health = health
        self._timeout_ms = query_timeout_ms
        self._queries = tuple(queries)
        self.refresh_interval_s = refresh_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, _Read] = {}
        self._formats: dict[str, Callable[[object], bytes]] = {
            content_type: encoder for encoder, content_type in map(choose_encoder, _AHEAD)}
        self._chunks: dict[str, tuple[tuple[int, ...], Chunk]] = {}  # content type → (reads, their chunk)

    def describe(self) -> list[Metric]:
        return []

    def refresh(self) -> None:
        """Run every query now; keep the families of those that succeeded (rendered, in background mode)."""
        with self._lock:
            formats = dict(self._formats) if self.refresh_interval_s else {}
        for query in self._queries:
            read = self._health.attempt(query.collector, lambda q=query: self._read(q, formats))
            if read is not None:
                with self._lock:
                    self._latest[query.collector] = read
        if formats:  # the scrapes' body chunks, joined and deflated here rather than in a scrape
            self._health.attempt("pipeline_exposition", lambda: [
                self.exposition(content_type, encoder).deflated() for content_type, encoder in formats.items()])

    def collect(self) -> Iterator[Metric]:
        if not self.refresh_interval_s:
            with self._lock:
                self._latest.clear()  # a query failing now must not be answered by an older read
            self.refresh()
        for read in self._fresh():
            yield from read.families

    def exposition(self, content_type: str, encoder: Callable[[object], bytes]) -> Chunk:
        """The latest families as `encoder` writes them (less OpenMetrics' `# EOF`), as rendered at refresh.

        A format no refresh rendered yet is rendered now, once per read, and ahead of time
        from the next refresh on. The Chunk is the same object until a read comes or goes,
        so it is deflated once (see exposition.gzip_body). Background mode only: it never
        queries Postgres.
        """
        with self._lock:
            if content_type not in self._formats and len(self._formats) < _MAX_FORMATS:
                self._formats[content_type] = encoder
        reads = self._fresh()
        key = tuple(read.serial for read in reads)
        with self._lock:
            cached = self._chunks.get(content_type)
        if cached is not None and cached[0] == key:
            return cached[1]
        parts = []
        for read in reads:
            rendered = read.rendered.get(content_type)
            if rendered is None:
                rendered = render_families(encoder, read.families, content_type)
                with self._lock:
                    if len(read.rendered) < _MAX_FORMATS:
                        read.rendered[content_type] = rendered
            parts.append(rendered)
        chunk = Chunk(b"".join(parts))
        with self._lock:
            if content_type in self._formats:
                self._chunks[content_type] = (key, chunk)
        return chunk

    def _fresh(self) -> list[_Read]:
        oldest = self._clock() - 4 * self.refresh_interval_s if self.refresh_interval_s else float("-inf")
        with self._lock:
            return [read for read in self._latest.values() if read.at >= oldest]

    def _read(self, query: PipelineQuery, formats: dict[str, Callable[[object], bytes]]) -> _Read:
        families = list(query.families(self._rows(query)))
        rendered = {content_type: render_families(encoder, families, content_type)
                    for content_type, encoder in formats.items()}
        return _Read(self._clock(), families, rendered)

    def _rows(self, query: PipelineQuery) -> Sequence[Row]:
        if not query.page:
            return self._statement(query.sql, {})
        rows: list[Row] = []
        after = -1  # instrument ids are positive
        while True:
            page = self._statement(query.sql, {"after": after, "page": query.page})
            rows.extend(page)
            ids = {row.instrument_id for row in page}
            if len(ids) < query.page:
                return rows
            after = max(ids)

    def _statement(self, sql: str, params: dict) -> Sequence[Row]:
        with self._engine.connect() as conn:
            conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(self._timeout_ms)})
            rows = conn.execute(text(sql), params).all()
            conn.rollback()
            return rows


class PipelineRefresher(threading.Thread):
    """Calls `collector.refresh()` now and then every `refresh_interval_s` until stopped."""

    def __init__(self, collector: PipelineCollector) -> None:
        super().__init__(name="exporter-pipeline", daemon=True)
        self._collector = collector
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            self._collector.refresh()
            self._stopping.wait(self._collector.refresh_interval_s)

    def stop(self) -> None:
        self._stopping.set()
