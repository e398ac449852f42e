"""The whole stack as separate OS processes from the Procfile, for end-to-end pipeline tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from celery import Celery

from services.cli.procfile import ProcessSpec, parse_procfile
from tests.utils.servers import free_port, wait_for_port

__all__ = ["LocalStack", "http"]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"


def http(method: str, url: str, token: str | None = None, timeout: float = 10.0,
         body: object = None) -> tuple[int, dict]:
    """One request as curl would make it (`body` as JSON); returns (status, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, method=method, data=data,
                                     headers={"Content-Type": "application/json"} if data is not None else {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class LocalStack:
    """Starts Procfile entries as processes sharing one Redis and one Postgres; logs go to files."""

    def __init__(self, redis_url: str, database_url: str, symbols: list[str], sim_now: str,
                 extra_env: dict | None = None) -> None:
        self.api_port, self.sim_port, self.exporter_port = free_port(), free_port(), free_port()
        self.logs = Path(tempfile.mkdtemp(prefix="cf-stack-"))
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "REDIS_URL": redis_url, "DATABASE_URL": database_url, "API_TOKEN": TOKEN,
            "EXCHANGE": "binance", "EXCHANGE_API_URL": f"http://127.0.0.1:{self.sim_port}",
            "SYMBOLS": ",".join(symbols), "TIMEFRAMES": "1h",
            "API_PORT": str(self.api_port), "SIM_PORT": str(self.sim_port),
            "EXPORTER_PORT": str(self.exporter_port), "EXPORTER_BIND": "127.0.0.1",
            # start-api empties this directory: never the default one another stack on this host may use.
            "PROMETHEUS_MULTIPROC_DIR": str(self.logs / "api-metrics"),
            "FETCH_RETRIES": "2", "EXCHANGE_CLOCK_RECHECK_S": "0", "EXCHANGE_RATE_LIMIT_PER_S": "1000",
            "BACKOFF_BASE_S": "0.05", "BACKOFF_MAX_S": "0.2", "ENVIRONMENT": "test",
            **(extra_env or {}),
        }
        self.specs = {s.name: s for s in parse_procfile((ROOT / "Procfile").read_text())}
        # The simulator's clock is frozen so that every run sees the same market (later flags win).
        sim = self.specs["exchange-sim"]
        self.specs["exchange-sim"] = ProcessSpec(sim.name, f"{sim.command} --now {sim_now} --clock-rate 0")
        self.processes: dict[str, subprocess.Popen] = {}
        self.control = Celery(broker=redis_url)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, name: str, **env: str) -> None:
        """Start one entry as honcho would: its line under /bin/sh, from the repository root, in its own
        process group (so stopping it stops its children too)."""
        with open(self.logs / f"{name}.log", "a") as log:
            self.processes[name] = subprocess.Popen(self.specs[name].argv(), env={**self.env, **env}, cwd=ROOT,
                                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(30)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def wait_for_consumers(self, queues: set[str], timeout: float = 180.0) -> None:
        """Until every queue in `queues` has a worker consuming it (asked over the broker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = self.control.control.inspect(timeout=1.0).active_queues() or {}
            consumed = {queue["name"] for worker in active.values() for queue in worker}
            if queues <= consumed:
                return
        raise RuntimeError(f"no consumer for {queues - consumed} after {timeout}s; logs in {self.logs}")

    def __enter__(self) -> LocalStack:
        subprocess.run([str(Path(sys.executable).parent / "candleflow"), "migrate"], env=self.env, check=True,
                       capture_output=True)
        for name in self.specs:
            self.start(name)
        wait_for_port(self.sim_port, process=self.processes["exchange-sim"])
        wait_for_port(self.api_port, process=self.processes["api"])
        self.wait_for_consumers({"ingest", "indicators", "signals"})
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self.processes):
            self.stop(name)

    def trigger(self, task: str, **params: str) -> tuple[int, dict]:
        query = "&".join([f"task={task}", *(f"{k}={v}" for k, v in params.items())])
        return http("POST", f"{self.api}/api/manual-update/?{query}", token=TOKEN)

    def wait_for_run(self, task_id: str, timeout: float = 120.0) -> dict:
        """Poll the status route until the run is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = http("GET", f"{self.api}/api/manual-update/?task_id={task_id}")
            if status == 200 and body["ready"]:
                return body
            time.sleep(0.5)
        raise RuntimeError(f"run {task_id} not ready after {timeout}s: {body}; logs in {self.logs}")
