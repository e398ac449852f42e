"""Flower as the stack starts it (compose/app/start-flower): read-only, /metrics behind its basic auth."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.utils.servers import free_port, wait_for_port

pytestmark = pytest.mark.integration

_REPO = Path(__file__).resolve().parents[2]
_START = _REPO / "compose" / "app" / "start-flower"
USER, PASSWORD = "operator", "flower-pass-8c1e4b97"


def call(method: str, url: str, credentials: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    if credentials:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def flower_env(redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "REDIS_URL": redis_url,
            "FLOWER_USER": USER, "FLOWER_PASSWORD": PASSWORD, "LOG_LEVEL": "WARNING", **extra}


def test_flower_sends_no_task_and_shows_metrics_only_with_its_credentials(redis_url, tmp_path):
    port = free_port()
    env = flower_env(redis_url)
    with (tmp_path / "flower.log").open("wb") as log:
        process = subprocess.Popen(["sh", str(_START), f"--port={port}"], cwd=_REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, timeout=60, process=process)
            base = f"http://127.0.0.1:{port}"
            assert call("GET", f"{base}/healthcheck") == 200, "the container healthcheck needs no credentials"
            assert call("GET", f"{base}/metrics") == 401
            assert call("GET", f"{base}/metrics", (USER, PASSWORD)) == 200
            assert call("GET", f"{base}/metrics", (USER, "wrong")) == 401
            assert call("POST", f"{base}/api/task/async-apply/pipeline.ping", (USER, PASSWORD)) == 403
            assert call("POST", f"{base}/api/task/send-task/pipeline.ping", (USER, PASSWORD)) == 403
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:  # flower can sit in its event loop's shutdown under load
                process.kill()
                process.wait(15)


@pytest.mark.parametrize(("extra", "named"), [
    ({"FLOWER_PASSWORD": "admin"}, "FLOWER_PASSWORD"),
    ({"FLOWER_PASSWORD": "CHANGE_ME "}, "FLOWER_PASSWORD"),
    ({"FLOWER_READ_ONLY": "false"}, "FLOWER_READ_ONLY"),
])
def test_production_flower_refuses_a_weak_password_and_the_writable_mode(redis_url, extra, named):
    env = flower_env(redis_url, ENVIRONMENT="prod", **extra)
    result = subprocess.run(["sh", str(_START)], cwd=_REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert named in result.stderr
