"""The API against real processes: a Celery worker for readiness, and gunicorn serving the app."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from services.api.app import create_app
from services.core.celery_app import QUEUES, create_celery
from services.core.config import get_settings
from tests.utils.servers import free_port, wait_for_port

pytestmark = pytest.mark.integration

_REPO = Path(__file__).resolve().parents[2]
_BIN = Path(sys.executable).parent
TOKEN = "integration-token-7d2a"


@pytest.fixture()
def service_env(redis_url, database_url) -> dict[str, str]:
    """The environment a container of the stack would get, pointing at the suite's servers."""
    redis.Redis.from_url(redis_url).flushdb()  # no leftover message may reach the worker below
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "API_TOKEN": TOKEN,
            "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"}


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child process that is always terminated (then killed if it lingers) on the way out."""
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=_REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def http(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, str]:
    """(status, headers, body text) without raising on 4xx/5xx."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_readiness_turns_ok_once_a_worker_consumes_every_queue(service_env, monkeypatch, engine, tmp_path):
    for name in ("REDIS_URL", "DATABASE_URL", "API_TOKEN", "ENVIRONMENT"):
        monkeypatch.setenv(name, service_env[name])
    get_settings.cache_clear()
    celery = create_celery()
    try:
        api = create_app(get_settings(), celery, redis.Redis.from_url(service_env["REDIS_URL"]), engine).test_client()
        assert api.get("/api/health").status_code == 503

        worker = [str(_BIN / "celery"), "-A", "services.core.celery_app", "worker", "-Q", ",".join(QUEUES),
                  "-c", "1", "--pool", "solo", "-n", f"api-health-{os.getpid()}@%h", "--loglevel", "WARNING"]
        with running(worker, service_env, tmp_path / "worker.log") as process:
            deadline = time.monotonic() + 90
            response = api.get("/api/health")
            while response.status_code != 200 and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.5)
                response = api.get("/api/health")
            assert response.status_code == 200, (response.get_json(), (tmp_path / "worker.log").read_text()[-3000:])
        body = response.get_json()
        assert body["status"] == "ok"
        assert all(len(workers) == 1 for workers in body["checks"]["queues"].values())
    finally:
        celery.close()
        get_settings.cache_clear()


@contextmanager
def gunicorn(env: dict[str, str], log: Path, *extra: str) -> Iterator[str]:
    """gunicorn serving services.api.wsgi:app on a free port; yields its base URL."""
    port = free_port()
    argv = [str(_BIN / "gunicorn"), "services.api.wsgi:app", "-b", f"127.0.0.1:{port}", *extra]
    with running(argv, env, log) as process:
        wait_for_port(port, timeout=60, process=process)
        yield f"http://127.0.0.1:{port}"


def test_gunicorn_serves_liveness_and_guards_the_trigger(service_env, tmp_path):
    with gunicorn(service_env, tmp_path / "gunicorn.log") as base:
        status, _, body = http("GET", f"{base}/api/health/live")
        assert (status, json.loads(body)) == (200, {"status": "ok"})

        status, headers, body = http("POST", f"{base}/api/manual-update/?task=all")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert json.loads(body)["status"] == "error"

        status, _, body = http("POST", f"{base}/api/manual-update/?task=all", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 202
        task_id = json.loads(body)["task_id"]
        status, _, body = http("GET", f"{base}/api/manual-update/?task_id={task_id}")
        assert status == 200 and json.loads(body)["status"] == "PENDING"


def test_gunicorn_refuses_to_boot_in_production_with_the_placeholder_token(service_env, tmp_path):
    env = {**service_env, "ENVIRONMENT": "prod", "API_TOKEN": "CHANGE_ME"}
    argv = [str(_BIN / "gunicorn"), "services.api.wsgi:app", "-b", f"127.0.0.1:{free_port()}"]
    result = subprocess.run(argv, cwd=_REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "API_TOKEN" in result.stdout + result.stderr


def test_metrics_add_up_over_gunicorn_workers_with_a_multiprocess_directory(service_env, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    config = tmp_path / "gunicorn_conf.py"
    config.write_text("from services.api.metrics import child_exit  # noqa: F401\n")
    env = {**service_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with gunicorn(env, tmp_path / "gunicorn.log", "-c", str(config), "--workers", "3") as base:
        for _ in range(12):
            assert http("GET", f"{base}/api/health/live")[0] == 200
        status, _, text = http("GET", f"{base}/metrics")
    assert status == 200
    line = 'candleflow_api_requests_total{method="GET",route="/api/health/live",status="200"}'
    values = [float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line)]
    assert values == [12.0], text


def raw_request(base: str, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (request line and headers) as is; (status, headers, body) of the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + b"\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


_PRODUCTION_CONFIG = _REPO / "compose" / "app" / "gunicorn.conf.py"


@pytest.mark.parametrize(("head", "status"), [
    (b"GET /api/health/live?pad=" + b"x" * 5000 + b" HTTP/1.1\r\nHost: api", 414),
    (b"GET /api/health/live HTTP/1.1\r\nHost: api\r\nX-Pad: " + b"y" * 9000, 431),
    (b"GET /api/health/live HTTP/1.1\r\nHost: api\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(150))[:-2], 431),
    (b"BREW\x01 /pot HTCPCP/1.0", 400),
], ids=["request-line", "header-size", "header-count", "garbage"])
def test_requests_gunicorn_refuses_itself_get_the_json_error_and_security_headers(service_env, tmp_path, head, status):
    with gunicorn(service_env, tmp_path / "gunicorn.log", "-c", str(_PRODUCTION_CONFIG), "--workers", "1") as base:
        code, headers, body = raw_request(base, head)
    assert code == status
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)
    assert error["status"] == "error" and error["message"]
    assert len(body) < 400, "the oversize request is not echoed back"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    assert "gunicorn" not in headers.get("Server", "").lower()


def test_every_served_answer_carries_the_security_headers_and_no_server_banner(service_env, tmp_path):
    with gunicorn(service_env, tmp_path / "gunicorn.log", "-c", str(_PRODUCTION_CONFIG), "--workers", "1") as base:
        answers = [http("GET", f"{base}/api/health/live"), http("GET", f"{base}/no/such/route"),
                   http("POST", f"{base}/api/manual-update/?task=all")]
    assert [status for status, _, _ in answers] == [200, 404, 401]
    for _, headers, _ in answers:
        assert headers["Server"] == "candleflow"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
