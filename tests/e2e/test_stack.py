"""The demo stack as an operator sees it: only published ports and `docker compose` commands."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import API_TOKEN, FLOWER_CREDENTIALS
from tests.e2e.stack import ComposeStack, http

pytestmark = pytest.mark.e2e

QUEUES = ("ingest", "indicators", "signals")


def run_all(stack: ComposeStack, timeout: float = 240.0) -> dict:
    """POST an `all` run, then poll its status until it is ready; the final status body."""
    reply = http("POST", stack.url("API_PORT", "/api/manual-update/?task=all"), token=API_TOKEN)
    assert reply.status == 202, reply.text
    task_id = reply.body["task_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http("GET", stack.url("API_PORT", f"/api/manual-update/?task_id={task_id}"))
        assert status.status == 200, status.text
        if status.body["ready"]:
            return status.body
        time.sleep(1)
    raise AssertionError(f"run {task_id} not ready after {timeout:.0f} s: {status.body}")


def consumers(stack: ComposeStack) -> dict[str, list[str]]:
    """Queue → live workers consuming it, as the API's readiness check reports them."""
    reply = http("GET", stack.url("API_PORT", "/api/health"))
    return reply.body["checks"]["queues"]


def test_the_api_reports_every_dependency_ready(stack):
    reply = http("GET", stack.url("API_PORT", "/api/health"))

    assert reply.status == 200, reply.text
    assert reply.body["checks"]["redis"] == "ok" and reply.body["checks"]["postgres"] == "ok"
    queues = reply.body["checks"]["queues"]
    assert all(len(queues[queue]) == 1 for queue in QUEUES), reply.body
    # Every worker also takes runs' start and finish off the pipeline queue.
    assert sorted(worker.split("@")[0] for worker in queues["pipeline"]) == sorted(QUEUES), reply.body


def test_a_run_without_the_token_is_refused(stack):
    reply = http("POST", stack.url("API_PORT", "/api/manual-update/?task=all"))

    assert reply.status == 401


def test_a_manual_run_fetches_candles_and_produces_signals(stack):
    run = run_all(stack)

    assert run["status"] == "SUCCESS", run
    stages = {(entry["instrument"], entry["stage"]) for entry in run["result"]}
    assert {("BTC/USD 1h", "ohlc"), ("BTC/USD 1h", "indicators"), ("BTC/USD 1h", "signals")} <= stages
    signals = http("GET", stack.url("API_PORT", "/api/signals?symbol=BTC/USD"))
    assert signals.status == 200, signals.text
    assert signals.body["count"] > 0 and signals.body["signals"][0]["symbol"] == "BTC/USD"


def test_the_ingest_worker_logs_show_the_run(stack):
    run = run_all(stack)

    logs = stack.logs("worker-ingest")
    assert run["task_id"] in logs, logs[-2000:]


def test_flower_lists_the_workers_only_with_its_credentials(stack):
    refused = http("GET", stack.url("FLOWER_PORT", "/api/workers"))
    reply = http("GET", stack.url("FLOWER_PORT", "/api/workers?refresh=1"), basic=FLOWER_CREDENTIALS)

    assert refused.status == 401
    assert reply.status == 200, reply.text
    assert {name.split("@")[0] for name in reply.body} >= set(QUEUES), list(reply.body)


def test_prometheus_scrapes_the_exporter_the_api_and_the_workers(stack):
    deadline = time.monotonic() + 90
    while True:
        reply = http("GET", stack.url("PROMETHEUS_PORT", "/api/v1/targets?state=active"))
        health: dict[str, set[str]] = {}
        for target in reply.body["data"]["activeTargets"]:
            health.setdefault(target["labels"]["job"], set()).add(target["health"])
        if all(health.get(job) == {"up"} for job in ("exporter", "api", "workers")):
            break
        assert time.monotonic() < deadline, f"targets not all up after 90 s: {health}"
        time.sleep(3)

    metrics = http("GET", stack.url("EXPORTER_PORT", "/metrics"))
    assert metrics.status == 200 and "candleflow_" in metrics.text


def test_a_restarted_signals_worker_serves_the_next_run(stack):
    stack.compose("restart", "worker-signals")
    stack.wait_healthy({"worker-signals"}, timeout=180)

    run = run_all(stack)

    assert run["status"] == "SUCCESS", run
    assert any(entry["stage"] == "signals" and entry["status"] == "ok" for entry in run["result"]), run


def test_scaling_the_ingest_worker_adds_a_consumer(stack):
    stack.compose("up", "--detach", "--scale", "worker-ingest=2", "--no-recreate", "worker-ingest")
    try:
        stack.wait_healthy({"worker-ingest"}, timeout=180)
        containers = [c for c in stack.containers() if c["Service"] == "worker-ingest"]
        flower = http("GET", stack.url("FLOWER_PORT", "/api/workers?status=true"), basic=FLOWER_CREDENTIALS)

        assert len(containers) == 2
        assert len(consumers(stack)["ingest"]) == 2, consumers(stack)
        online_ingest = [name for name, online in flower.body.items() if name.startswith("ingest@") and online]
        assert len(online_ingest) == 2, flower.body
    finally:
        stack.compose("up", "--detach", "--scale", "worker-ingest=1", "--no-recreate", "worker-ingest")
