"""What operators see in the running stack: the exporter after a run, every Grafana panel's
query answered by the real Prometheus, and the no-consumer alert firing when a worker stops."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.e2e.conftest import API_TOKEN
from tests.e2e.stack import ComposeStack, http
from tests.e2e.test_stack import run_all
from tests.unit.exporter.promql import prometheus_dashboards

pytestmark = pytest.mark.e2e


# What Grafana would substitute: the demo stack's first instrument and a rate window that
# spans several 15 s scrapes.
TEMPLATE = {"$exchange": "binance", "$symbol": "BTC/USD", "$timeframe": "1h",
            "$__rate_interval": "2m", "$__interval": "1m", "$__range": "1h"}


def query(stack: ComposeStack, expr: str) -> list:
    reply = http("GET", stack.url("PROMETHEUS_PORT", "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
    assert reply.status == 200 and reply.body["status"] == "success", (expr, reply.text)
    return reply.body["data"]["result"]


def panel_queries() -> list[tuple[str, str, str]]:
    found = []
    # The Market dashboard is SQL on Postgres: tests/e2e/test_market_dashboard.py runs its queries.
    for path in prometheus_dashboards():
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in TEMPLATE.items():
                    expr = expr.replace(name, value)
                found.append((path.stem, panel["title"], expr))
    return found


@pytest.fixture(scope="module")
def after_a_run(stack):
    run = run_all(stack)
    assert run["status"] == "SUCCESS", run
    return run


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not seen after {timeout:.0f} s"
        time.sleep(3)


def test_after_a_run_the_exporter_metrics_show_it(stack, after_a_run):
    def shown():
        text = http("GET", stack.url("EXPORTER_PORT", "/metrics")).text
        return 'candleflow_pipeline_last_success_timestamp_seconds{kind="all"}' in text and text
    text = wait_for(shown, 90, "the run in the exporter's metrics")
    assert 'candleflow_data_age_seconds{exchange="binance",symbol="BTC/USD",timeframe="1h"}' in text


def test_every_grafana_panel_query_returns_data_from_prometheus(stack, after_a_run):
    queries = panel_queries()
    assert len(queries) >= 20
    # A couple of scrapes after the run, so rates over the window have two points.
    wait_for(lambda: query(stack, 'candleflow_pipeline_last_success_timestamp_seconds{kind="all"}'), 120,
             "the run in Prometheus")
    time.sleep(35)
    empty = [(dashboard, title, expr) for dashboard, title, expr in queries if not query(stack, expr)]
    assert not empty, "panels without data:\n" + "\n".join(f"{d} / {t}: {e}" for d, t, e in empty)


def test_with_the_signals_worker_stopped_its_queue_grows_and_the_no_consumer_alert_fires(stack, after_a_run):
    stack.compose("stop", "worker-signals")
    try:
        for symbol in ("BTC/USD", "ETH/USD"):
            reply = http("POST", stack.url("API_PORT", f"/api/manual-update/?task=signals&symbol={symbol}"),
                         token=API_TOKEN)
            assert reply.status == 202, reply.text
        depth = wait_for(lambda: [s for s in query(stack, 'candleflow_queue_depth{queue="signals"} >= 2')], 120,
                         "the signals queue growing in Prometheus")
        assert float(depth[0]["value"][1]) >= 2

        def firing():
            reply = http("GET", stack.url("PROMETHEUS_PORT", "/api/v1/alerts"))
            return [a for a in reply.body["data"]["alerts"]
                    if a["labels"]["alertname"] == "QueueWithoutConsumer" and a["labels"].get("queue") == "signals"
                    and a["state"] == "firing"]
        assert wait_for(firing, 240, "QueueWithoutConsumer firing for queue signals")
    finally:
        stack.compose("start", "worker-signals")
        stack.wait_healthy({"worker-signals"}, timeout=180)
