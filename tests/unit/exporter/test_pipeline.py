"""Pipeline collector's shaping of query rows, and its isolation of a failing query (real SQL: integration)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from services.exporter.health import ScrapeHealth, ScrapeHealthCollector
from services.exporter.pipeline import QUERIES, PipelineCollector
from tests.unit.exporter.fakes import FakeEngine

NOW = 1_700_000_000.0
BTC = {"exchange": "binance", "symbol": "BTC/USD"}
BTC_ROW = {"instrument_id": 1, **BTC}


def registry_for(answers) -> CollectorRegistry:
    health = ScrapeHealth()
    registry = CollectorRegistry()
    registry.register(PipelineCollector(FakeEngine(answers), health))
    registry.register(ScrapeHealthCollector(health))
    return registry


def test_data_age_counts_from_the_close_of_the_newest_closed_candle():
    registry = registry_for({"max(c.ts)": [
        {**BTC_ROW, "timeframe": "1h", "newest_candle": NOW - 3 * 3600, "newest_signal": NOW - 7200, "now": NOW},
        {**BTC_ROW, "timeframe": "4h", "newest_candle": NOW - 4 * 3600 - 60, "newest_signal": None, "now": NOW},
        {**BTC_ROW, "timeframe": "1d", "newest_candle": None, "newest_signal": None, "now": NOW},
        {**BTC_ROW, "timeframe": "bogus", "newest_candle": NOW, "newest_signal": None, "now": NOW},
        {**BTC_ROW, "timeframe": None, "newest_candle": None, "newest_signal": None, "now": NOW},
    ]})
    assert registry.get_sample_value("candleflow_data_age_seconds", {**BTC, "timeframe": "1h"}) == 2 * 3600
    assert registry.get_sample_value("candleflow_data_age_seconds", {**BTC, "timeframe": "4h"}) == 60
    # No candles yet, or a timeframe nobody understands: no age rather than a made-up one.
    assert registry.get_sample_value("candleflow_data_age_seconds", {**BTC, "timeframe": "1d"}) is None
    assert registry.get_sample_value("candleflow_data_age_seconds", {**BTC, "timeframe": "bogus"}) is None
    last_signal = registry.get_sample_value("candleflow_signal_last_timestamp_seconds", {**BTC, "timeframe": "1h"})
    assert last_signal == NOW - 7200


def test_each_timeframe_in_use_reports_its_length_so_alerts_can_count_bars():
    registry = registry_for({"max(c.ts)": [
        {**BTC_ROW, "timeframe": "1h", "newest_candle": NOW, "newest_signal": None, "now": NOW},
        {"instrument_id": 2, "exchange": "binance", "symbol": "ETH/USD", "timeframe": "1h", "newest_candle": None,
         "newest_signal": None, "now": NOW},
        {**BTC_ROW, "timeframe": "15m", "newest_candle": NOW, "newest_signal": None, "now": NOW},
    ]})
    assert registry.get_sample_value("candleflow_timeframe_seconds", {"timeframe": "1h"}) == 3600
    assert registry.get_sample_value("candleflow_timeframe_seconds", {"timeframe": "15m"}) == 900


def test_runs_by_state_and_last_success_per_kind():
    registry = registry_for({
        "FROM pipeline_runs GROUP BY kind, state": [
            {"kind": "all", "state": "SUCCESS", "runs": 5, "last_finished": NOW - 60},
            {"kind": "all", "state": "PARTIAL", "runs": 2, "last_finished": NOW},
            {"kind": "backfill", "state": "STARTED", "runs": 1, "last_finished": None},
        ],
        "DISTINCT ON (kind)": [{"kind": "all", "state": "PARTIAL"}],
    })
    assert registry.get_sample_value("candleflow_pipeline_runs", {"kind": "all", "state": "PARTIAL"}) == 2
    assert registry.get_sample_value("candleflow_pipeline_last_success_timestamp_seconds", {"kind": "all"}) == NOW - 60
    assert registry.get_sample_value("candleflow_pipeline_last_success_timestamp_seconds", {"kind": "backfill"}) is None
    assert registry.get_sample_value("candleflow_pipeline_last_run_state", {"kind": "all", "state": "PARTIAL"}) == 1
    assert registry.get_sample_value("candleflow_pipeline_last_run_state", {"kind": "all", "state": "SUCCESS"}) == 0


def test_one_failing_query_costs_only_its_own_metrics():
    registry = registry_for({
        "FROM rejected_candles": OperationalError("SELECT", {},
                                                  Exception("canceling statement due to statement timeout")),
        "FROM signals\n         WHERE ts": [{"strategy": "ema_cross", "side": "buy", "value": 4}],
    })
    scrape = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in registry.collect() for s in m.samples}
    assert scrape[("candleflow_exporter_scrape_errors_total", (("collector", "rejected_candles"),))] == 1
    assert not any(name == "candleflow_rejected_candles" for name, _ in scrape)
    assert scrape[("candleflow_signals_last_24h", (("side", "buy"), ("strategy", "ema_cross")))] == 4


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_in_background_mode_scrapes_serve_the_last_read_without_querying():
    answers = {"DISTINCT ON (kind)": [{"kind": "all", "state": "SUCCESS"}]}
    engine, clock = FakeEngine(answers), Clock()
    collector = PipelineCollector(engine, ScrapeHealth(), refresh_interval_s=15, clock=clock)
    registry = CollectorRegistry()
    registry.register(collector)
    labels = {"kind": "all", "state": "SUCCESS"}
    assert registry.get_sample_value("candleflow_pipeline_last_run_state", labels) is None  # not read yet
    collector.refresh()
    answers["DISTINCT ON (kind)"] = OperationalError("SELECT", {}, Exception("server closed the connection"))
    assert registry.get_sample_value("candleflow_pipeline_last_run_state", labels) == 1


def test_a_read_older_than_four_refresh_intervals_is_no_longer_served():
    clock = Clock()
    collector = PipelineCollector(FakeEngine({"DISTINCT ON (kind)": [{"kind": "all", "state": "SUCCESS"}]}),
                                  ScrapeHealth(), refresh_interval_s=15, clock=clock)
    registry = CollectorRegistry()
    registry.register(collector)
    collector.refresh()
    clock.now += 60
    assert registry.get_sample_value("candleflow_pipeline_last_run_state", {"kind": "all", "state": "SUCCESS"}) == 1
    clock.now += 1
    assert registry.get_sample_value("candleflow_pipeline_last_run_state", {"kind": "all", "state": "SUCCESS"}) is None


class PagedEngine:
    """Answers the freshness query page by page from five instruments, recording each statement's parameters."""

    def __init__(self) -> None:
        self.pages: list[dict] = []
        self.timeouts = 0

    def connect(self):
        engine = self

        class Connection:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return None

            def rollback(self):
                return None

            def execute(self, statement, params=None):
                if "set_config" in str(statement):
                    engine.timeouts += 1
                    return SimpleNamespace(all=lambda: [])
                engine.pages.append(dict(params))
                ids = [n for n in range(1, 6) if n > params["after"]][:params["page"]]
                rows = [SimpleNamespace(instrument_id=n, exchange="binance", symbol=f"S{n}/USD", timeframe=tf,
                                        newest_candle=NOW - 7200, newest_signal=None, now=NOW)
                        for n in ids for tf in ("1h", "4h")]
                return SimpleNamespace(all=lambda: rows)
        return Connection()


def test_freshness_is_read_in_pages_each_under_its_own_statement_timeout():
    freshness = next(q for q in QUERIES if q.collector == "data_freshness")
    engine = PagedEngine()
    registry = CollectorRegistry()
    registry.register(PipelineCollector(engine, ScrapeHealth(), queries=[replace(freshness, page=2)]))
    ages = [s for m in registry.collect() for s in m.samples if s.name == "candleflow_data_age_seconds"]
    assert len(ages) == 10, "five instruments, two timeframes"
    assert [page["after"] for page in engine.pages] == [-1, 2, 4]
    assert engine.timeouts == 3
