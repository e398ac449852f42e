"""Pipeline health from Postgres: runs, data freshness, rejected candles, failed fetches, signals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine, Row, text

from services.core.config import timeframe_seconds
from services.exporter.exposition import render_families
from services.exporter.health import ScrapeHealth

__all__ = ["PipelineQuery", "PipelineCollector", "PipelineRefresher", "QUERIES", "FINAL_STATES"]

FINAL_STATES = ("SUCCESS", "PARTIAL", "FAILURE")
_INSTRUMENT = ["exchange", "symbol", "timeframe"]


@dataclass(frozen=True)
class PipelineQuery:
    """One cheap aggregate query and the metric families built from its rows; fails on its own."""

    collector: str
    sql: str
    families: Callable[[Sequence[Row]], Iterable[Metric]]


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


def _freshness(rows: Sequence[Row]) -> Iterator[Metric]:
    age = GaugeMetricFamily("candleflow_data_age_seconds",
                            "Time since the newest closed candle closed", labels=_INSTRUMENT)
    signal = GaugeMetricFamily("candleflow_signal_last_timestamp_seconds",
                               "Bar time of the newest signal", labels=_INSTRUMENT)
    lengths: dict[str, int] = {}
    for row in rows:
        try:
            length = lengths.get(row.timeframe) or timeframe_seconds(row.timeframe)
        except ValueError:
            continue  # a malformed timeframe in the table is not this exporter's to fix
        lengths[row.timeframe] = length
        labels = [row.exchange, row.symbol, row.timeframe]
        if row.newest_candle is not None:
            age.add_metric(labels, max(0.0, float(row.now) - float(row.newest_candle) - length))
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
# pipeline_runs (kind, state), fetch_ledger status and signals ts indexes), so a scrape with
# thousands of instruments stays in milliseconds; rejected_candles, which only grows with bad
# input, is the one table scanned.
QUERIES = (
    PipelineQuery("pipeline_runs", """
        SELECT kind, state, count(*) AS runs, extract(epoch FROM max(finished_at)) AS last_finished
          FROM pipeline_runs GROUP BY kind, state""", _runs),
    PipelineQuery("pipeline_last_run", """
        SELECT DISTINCT ON (kind) kind, state FROM pipeline_runs
         WHERE finished_at IS NOT NULL ORDER BY kind, finished_at DESC""", _last_run),
    PipelineQuery("data_freshness", """
        SELECT i.exchange, i.symbol, tf.timeframe, extract(epoch FROM now()) AS now,
               extract(epoch FROM (SELECT max(c.ts) FROM candles c WHERE c.instrument_id = i.id
                                      AND c.timeframe = tf.timeframe AND c.is_closed)) AS newest_candle,
               extract(epoch FROM (SELECT max(s.ts) FROM signals s WHERE s.instrument_id = i.id
                                      AND s.timeframe = tf.timeframe)) AS newest_signal
          FROM instruments i CROSS JOIN LATERAL unnest(i.timeframes) AS tf(timeframe)
         WHERE i.active""", _freshness),
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


@dataclass
class _Read:
    """One query's families from one read, and their exposition in each format scrapes asked for."""

    at: float
    families: list[Metric]
    rendered: dict[str, bytes] = field(default_factory=dict)  # content type → bytes


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

    def collect(self) -> Iterator[Metric]:
        if not self.refresh_interval_s:
            with self._lock:
                self._latest.clear()  # a query failing now must not be answered by an older read
            self.refresh()
        for read in self._fresh():
            yield from read.families

    def exposition(self, content_type: str, encoder: Callable[[object], bytes]) -> bytes:
        """The latest families as `encoder` writes them (less OpenMetrics' `# EOF`), as rendered at refresh.

        A format no refresh rendered yet is rendered now, once per read, and ahead of time
        from the next refresh on. Background mode only: it never queries Postgres.
        """
        with self._lock:
            if content_type not in self._formats and len(self._formats) < _MAX_FORMATS:
                self._formats[content_type] = encoder
        parts = []
        for read in self._fresh():
            rendered = read.rendered.get(content_type)
            if rendered is None:
                rendered = render_families(encoder, read.families, content_type)
                with self._lock:
                    if len(read.rendered) < _MAX_FORMATS:
                        read.rendered[content_type] = rendered
            parts.append(rendered)
        return b"".join(parts)

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
        with self._engine.connect() as conn:
            conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(self._timeout_ms)})
            rows = conn.execute(text(query.sql)).all()
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
