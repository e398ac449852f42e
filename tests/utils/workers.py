"""A real Celery worker as an OS process, started by compose/app/start-worker as the stack starts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

from tests.utils.waiting import wait_until

__all__ = ["Worker", "running_worker"]

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A started worker: its process, its hostname, its log, and a control app on its broker."""

    def __init__(self, process: subprocess.Popen, hostname: str, log: Path, control: Celery) -> None:
        self.process, self.hostname, self.log_path, self.control = process, hostname, log, control

    def log(self) -> str:
        return self.log_path.read_text()

    def inspect(self, timeout: float = 2.0):
        return self.control.control.inspect(timeout=timeout, destination=[self.hostname])


@contextmanager
def running_worker(queue: str, redis_url: str, database_url: str, concurrency: int = 1,
                   **env: str) -> Iterator[Worker]:
    """`start-worker QUEUE CONCURRENCY` with the suite's servers and `env`, until it answers a ping."""
    log = Path(tempfile.mkdtemp(prefix=f"cf-worker-{queue}-")) / "worker.log"
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                   "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ENVIRONMENT": "test", **env}
    environment.pop("WORKER_METRICS_PORT", None)
    with open(log, "w") as out:
        process = subprocess.Popen([str(ROOT / "compose" / "app" / "start-worker"), queue, str(concurrency)],
                                   env=environment, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    # On the worker's broker: BROKER_URL when `env` moves it off REDIS_URL (tests/brokers).
    control = Celery(broker=env.get("BROKER_URL", redis_url), backend=redis_url)
    hostname = f"{queue}@{socket.gethostname()}"
    try:
        wait_until(lambda: process.poll() is not None or control.control.ping(destination=[hostname], timeout=0.5),
                   f"worker {hostname} to answer", 90, detail=log.read_text)
        assert process.poll() is None, f"worker exited {process.returncode}:\n{log.read_text()}"
        yield Worker(process, hostname, log, control)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
        control.close()
