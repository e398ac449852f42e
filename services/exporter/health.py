"""The exporter's account of itself: which collector failed or was slow, so one bad source is visible, not fatal."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["ScrapeHealth", "ScrapeHealthCollector"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ScrapeHealth:
    """Counts failures and times each named source; shared by every collector of one exporter."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._errors: dict[str, int] = {}
        self._durations: dict[str, float] = {}

    def attempt(self, collector: str, read: Callable[[], T]) -> T | None:
        """`read()`, or None after counting and logging its failure: the rest of the scrape carries on."""
        started = self._clock()
        try:
            return read()
        except Exception:
            log.exception("collector %s failed; its metrics are missing from this scrape", collector)
            self.record_error(collector)
            return None
        finally:
            with self._lock:
                self._durations[collector] = self._clock() - started

    def record_error(self, collector: str) -> None:
        with self._lock:
            self._errors[collector] = self._errors.get(collector, 0) + 1

    def snapshot(self) -> tuple[dict[str, int], dict[str, float]]:
        with self._lock:
            return dict(self._errors), dict(self._durations)


class ScrapeHealthCollector:
    """Yields scrape errors and durations; register it last so it reports the scrape it ends."""

    def __init__(self, health: ScrapeHealth) -> None:
        self._health = health

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration time: sources may not be reachable yet

    def collect(self) -> Iterator[Metric]:
        errors, durations = self._health.snapshot()
        failed = CounterMetricFamily(
            "candleflow_exporter_scrape_errors", "Reads of a metrics source that failed, by collector",
            labels=["collector"])
        for collector, count in sorted(errors.items()):
            failed.add_metric([collector], count)
        yield failed
        took = GaugeMetricFamily(
            "candleflow_exporter_collector_duration_seconds", "How long each collector's last read took",
            labels=["collector"])
        for collector, seconds in sorted(durations.items()):
            took.add_metric([collector], seconds)
        yield took
