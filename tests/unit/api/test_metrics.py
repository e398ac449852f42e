"""Prometheus metrics: request count and latency per route, on the app's own registry."""

from __future__ import annotations

from services.api.app import create_app
from services.api.metrics import METRICS_KEY


def test_requests_are_counted_per_route_rule_and_status(api, client):
    client.get("/api/health/live")
    client.get("/api/health/live")
    client.get("/api/candles?symbol=nope")
    client.get("/api/no/such/path")
    registry = api.extensions[METRICS_KEY].registry

    def count(method, route, status):
        return registry.get_sample_value("candleflow_api_requests_total",
                                         {"method": method, "route": route, "status": status})

    assert count("GET", "/api/health/live", "200") == 2
    assert count("GET", "/api/candles", "400") == 1
    # Unknown paths share one label, so a scanner cannot blow up the series count.
    assert count("GET", "<unmatched>", "404") == 1
    assert registry.get_sample_value("candleflow_api_request_duration_seconds_count",
                                     {"method": "GET", "route": "/api/health/live"}) == 2


def test_metrics_are_exposed_in_the_prometheus_text_format(client):
    client.get("/api/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    assert 'candleflow_api_requests_total{method="GET",route="/api/health/live",status="200"} 1.0' in response.text


def test_two_apps_keep_separate_registries(api_settings):
    first, second = create_app(settings=api_settings), create_app(settings=api_settings)
    first.test_client().get("/api/health/live")
    sample = {"method": "GET", "route": "/api/health/live", "status": "200"}
    assert first.extensions[METRICS_KEY].registry.get_sample_value("candleflow_api_requests_total", sample) == 1
    assert second.extensions[METRICS_KEY].registry.get_sample_value("candleflow_api_requests_total", sample) is None


def test_method_labels_are_the_http_methods_or_other():
    from services.api.metrics import method_label

    assert [method_label(m) for m in ("GET", "PATCH", "DELETE", "BREW", "get", "X" * 500)] == [
        "GET", "PATCH", "DELETE", "other", "other", "other"]
