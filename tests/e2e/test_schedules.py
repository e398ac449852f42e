"""The running compose stack's schedule, edited through the published API port: beat starts a run from it at once,
and no container restarts."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import API_TOKEN
from tests.e2e.stack import ComposeStack, http
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.e2e

JOB = {"name": "e2e-btc", "task": "ohlc", "scope": {"symbol": "BTC/USD"}, "every": 10, "priority": 7}


def send_json(method: str, url: str, body: dict) -> tuple[int, dict]:
    """A request with a JSON body, as `curl -X METHOD -H 'Content-Type: application/json' -d …` sends it."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {API_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def start_times(stack: ComposeStack) -> dict[str, str]:
    """Container name → when it last started, for every running container."""
    names = [c["Name"] for c in stack.containers() if c["State"] == "running"]
    out = subprocess.run(["docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}}", *names],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def poll(what: str, probe, timeout: float):
    return wait_until(probe, what, timeout, interval=1)


def test_a_job_added_through_the_api_is_run_by_the_running_beat_without_a_restart(stack):
    before = start_times(stack)
    assert any("beat" in name for name in before), before
    status, job = send_json("POST", stack.url("API_PORT", "/api/schedules"), JOB)
    assert status == 201, job
    url = stack.url("API_PORT", "/api/schedules/e2e-btc")
    try:
        run_id = poll("the job's first run", lambda: http("GET", url).body.get("last_run_id"), timeout=120)
        # Off again, so the next firings do not queue behind this one.
        status, job = send_json("PATCH", url, {"enabled": False})
        assert status == 200 and job["enabled"] is False and job["next_run_at"] is None, job

        def finished():
            # 404 until a worker has started the beat's run and written its row.
            reply = http("GET", stack.url("API_PORT", f"/api/manual-update/?task_id={run_id}"))
            return reply.body if reply.status == 200 and reply.body["ready"] else None

        run = poll(f"run {run_id} finished", finished, timeout=240)
        assert run["status"] == "SUCCESS" and run["task_type"] == "ohlc", run
        assert run["scope"] == {"symbol": "BTC/USD"}
        history = http("GET", f"{url}/history").body["changes"]
        assert [c["action"] for c in history] == ["change", "add"] and {c["actor"] for c in history} == {"api-token"}
    finally:
        http("DELETE", url, token=API_TOKEN)
    assert start_times(stack) == before, "a container restarted"
