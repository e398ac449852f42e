"""Scrape health: a failing read is counted and timed, and the exception stops there."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.exporter.health import ScrapeHealth, ScrapeHealthCollector


def test_a_failing_read_returns_nothing_and_is_counted_per_collector():
    ticks = iter([0.0, 0.25, 1.0, 1.5])
    health = ScrapeHealth(clock=lambda: next(ticks))
    assert health.attempt("data_freshness", lambda: 1 / 0) is None
    assert health.attempt("queues", lambda: "depths") == "depths"
    registry = CollectorRegistry()
    registry.register(ScrapeHealthCollector(health))
    assert registry.get_sample_value("candleflow_exporter_scrape_errors_total", {"collector": "data_freshness"}) == 1
    assert registry.get_sample_value("candleflow_exporter_scrape_errors_total", {"collector": "queues"}) is None
    assert registry.get_sample_value("candleflow_exporter_collector_duration_seconds", {"collector": "queues"}) == 0.5
