"""Prometheus metrics for the API: request count and latency per route, on a registry the app owns."""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

__all__ = ["ApiMetrics", "install_metrics", "child_exit", "method_label", "METRICS_KEY"]

METRICS_KEY = "candleflow.metrics"
_UNMATCHED = "<unmatched>"
# Label values come from closed sets, whatever a client sends: a made-up method or path must not
# mint a new time series (each one costs memory in every worker and in Prometheus, for good).
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OTHER_METHOD = "other"

metrics_routes = Blueprint("metrics", __name__)


class ApiMetrics:
    """The API's request metrics, registered on `registry` (one per app, so tests never collide)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # The route label is the URL rule, never the raw path, so the label set stays bounded.
        self.requests = Counter("candleflow_api_requests", "HTTP requests handled by the API",
                                ("method", "route", "status"), registry=registry)
        self.latency = Histogram("candleflow_api_request_duration_seconds", "Time to handle one API request",
                                 ("method", "route"), registry=registry)

    def scrape_registry(self) -> CollectorRegistry:
        """What /metrics exposes: under gunicorn with PROMETHEUS_MULTIPROC_DIR, every worker's files merged."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return merged
        return self.registry


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def method_label(method: str) -> str:
    """The method as a label: one of the HTTP methods, or "other"."""
    return method if method in _KNOWN_METHODS else _OTHER_METHOD


def _record(response: Response) -> Response:
    metrics: ApiMetrics = current_app.extensions[METRICS_KEY]
    route = request.url_rule.rule if request.url_rule is not None else _UNMATCHED
    method = method_label(request.method)
    metrics.requests.labels(method, route, str(response.status_code)).inc()
    started = g.get("request_started")
    if started is not None:
        metrics.latency.labels(method, route).observe(time.perf_counter() - started)
    return response


@metrics_routes.get("/metrics")
def expose_metrics() -> Response:
    """Prometheus text exposition of the API's metrics."""
    metrics: ApiMetrics = current_app.extensions[METRICS_KEY]
    return Response(generate_latest(metrics.scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def install_metrics(app: Flask, registry: CollectorRegistry | None = None) -> ApiMetrics:
    """Time and count every request of `app`, and serve GET /metrics."""
    metrics = ApiMetrics(registry or CollectorRegistry())
    app.extensions[METRICS_KEY] = metrics
    app.before_request(_start_timer)
    app.after_request(_record)
    app.register_blueprint(metrics_routes)
    return metrics


def child_exit(server: object, worker: object) -> None:
    """Gunicorn hook (import it in the gunicorn config): drop a dead worker's live-gauge files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
