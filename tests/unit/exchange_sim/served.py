"""The simulator as its CLI serves it (several processes sharing one state), and plain HTTP calls to it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.utils.servers import free_port

__all__ = ["http", "served_simulator"]

ROOT = Path(__file__).resolve().parents[3]


def http(method: str, url: str, body: object = None) -> tuple[int, object]:
    """(status, JSON body or None) of one request, on a new connection every time (so any process may answer)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, None


@contextmanager
def served_simulator(*arguments: str) -> Iterator[str]:
    """`python -m services.exchange_sim --workers 2 ARGUMENTS` on a free port, frozen at 2024-03-01; its URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "services.exchange_sim", "--port", str(port), "--workers", "2",
                                "--now", "2024-03-01T00:00:00Z", "--clock-rate", "0", *arguments], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                http("GET", f"{url}/_sim/clock")  # answered in every dialect
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)
