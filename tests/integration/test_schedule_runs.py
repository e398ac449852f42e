"""A job added over HTTP to the running Procfile stack: its beat starts a run that real workers finish."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.utils.stack import TOKEN, LocalStack, http

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD"]
SIM_NOW = "2024-03-01T00:30:00Z"


@pytest.fixture(scope="module")
def stack(fresh_servers):
    with LocalStack(*fresh_servers, SYMBOLS, SIM_NOW) as running:
        yield running


def send_json(method: str, url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_running_beat_starts_an_added_jobs_run_and_the_workers_finish_it(stack):
    status, job = send_json("POST", f"{stack.api}/api/schedules",
                            {"name": "btc-probe", "task": "ohlc", "scope": {"symbol": "BTC/USD"}, "every": 10,
                             "priority": 7})
    assert status == 201, job
    beat = stack.processes["beat"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not job["last_run_id"]:
        time.sleep(0.5)
        job = http("GET", f"{stack.api}/api/schedules/btc-probe")[1]
    assert job["last_run_id"], f"beat never ran the job; logs in {stack.logs}"
    status, job = send_json("PATCH", f"{stack.api}/api/schedules/btc-probe", {"enabled": False})
    assert status == 200 and job["next_run_at"] is None

    run = stack.wait_for_run(job["last_run_id"])
    assert run["status"] == "SUCCESS", run
    assert (run["task_type"], run["scope"]) == ("ohlc", {"symbol": "BTC/USD"})
    assert {entry["instrument"] for entry in run["result"]} == {"BTC/USD 1h"}
    assert stack.processes["beat"] is beat and beat.poll() is None  # applied by the beat that was running
