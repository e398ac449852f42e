"""Two simulated worker hosts (network namespaces) and the servers they reach only over their veth links."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery

from tests.hosts.netns import SUBNET, Host, network_hosts, on_host
from tests.utils.servers import free_port, postgres_server, redis_server, wait_for_port
from tests.utils.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "test-token"
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD"]
SIM_NOW = "2024-03-01T00:30:00Z"
# Which queues each host's workers consume: ingest runs only on host-a and signals only on host-b,
# so every batch's chain crosses from one host to the other; both run indicators.
HOST_QUEUES = {"host-a": ("ingest", "indicators"), "host-b": ("indicators", "signals")}
# One connection per pool process is all a prefork worker needs (one task at a time, one
# transaction at a time): a pool that cannot grow beyond it shows if that ever stops being true.
POOL = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}


def _url_on(url: str, address: str) -> str:
    """The same server's URL as `address` reaches it (the servers listen on every link's address)."""
    scheme, rest = url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    port_and_path = location.split(":", 1)[1]
    return f"{scheme}://{credentials + '@' if credentials else ''}{address}:{port_and_path}"


@dataclass
class SpreadStack:
    """The control plane (API, exchange simulator) here, workers on the simulated hosts; logs in one directory."""

    hosts: list[Host]
    redis_url: str  # as this machine reaches it (host-a's link address)
    database_url: str
    api: str
    logs: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url_from(self, host: Host, url: str) -> str:
        return _url_on(url, host.gateway)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()


def _environment(redis_url: str, database_url: str, sim_url: str, api_port: int, logs: Path) -> dict[str, str]:
    return {
        **os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_URL": redis_url, "DATABASE_URL": database_url, "API_TOKEN": TOKEN, "ENVIRONMENT": "test",
        "EXCHANGE": "binance", "EXCHANGE_API_URL": sim_url, "SYMBOLS": ",".join(SYMBOLS), "TIMEFRAMES": "1h",
        # Two instruments per batch: a run over four is two chains, so both indicator workers can get one.
        "PIPELINE_BATCH_SIZE": "2",
        "FETCH_RETRIES": "2", "EXCHANGE_CLOCK_RECHECK_S": "0", "EXCHANGE_RATE_LIMIT_PER_S": "1000",
        "BACKOFF_BASE_S": "0.05", "BACKOFF_MAX_S": "0.2",
        "PROMETHEUS_MULTIPROC_DIR": str(logs / "api-metrics"), "API_PORT": str(api_port),
    }


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def spread_stack() -> Iterator[SpreadStack]:
    """Namespaces, servers on their links, migrate, simulator and API here, then each host's workers,
    all answering; everything stopped and the namespaces removed at the end, even after a failure."""
    logs = Path(tempfile.mkdtemp(prefix="cf-netns-"))
    with ExitStack() as stack:
        hosts = stack.enter_context(network_hosts(tuple(HOST_QUEUES)))
        links = tuple(host.gateway for host in hosts)
        redis_url = stack.enter_context(redis_server(addresses=links))
        database_url = stack.enter_context(postgres_server(addresses=links, clients=(f"{SUBNET}.0.0/16",)))
        sim_port, api_port = free_port(), free_port()
        env = _environment(redis_url, database_url, f"http://{links[0]}:{sim_port}", api_port, logs)
        subprocess.run([str(BIN / "candleflow"), "migrate"], env=env, check=True, capture_output=True)
        sim = _start([str(ROOT / "compose/app/start-exchange-sim"), "--host", links[0], "--port", str(sim_port),
                      "--now", SIM_NOW, "--clock-rate", "0"], env, logs / "exchange-sim.log")
        stack.callback(_stop, sim)
        api = _start([str(ROOT / "compose/app/start-api"), "--bind", f"127.0.0.1:{api_port}"], env, logs / "api.log")
        stack.callback(_stop, api)
        wait_for_port(sim_port, process=sim, host=links[0])
        wait_for_port(api_port, process=api)
        spread = SpreadStack(hosts, redis_url, database_url, f"http://127.0.0.1:{api_port}", logs)
        control = Celery(broker=redis_url)
        stack.callback(control.close)
        for host in hosts:
            # Every address a host's processes are given is this machine's end of its own link.
            host_env = {**env, **POOL, "REDIS_URL": spread.url_from(host, redis_url),
                        "DATABASE_URL": spread.url_from(host, database_url),
                        "EXCHANGE_API_URL": f"http://{host.gateway}:{sim_port}"}
            for queue in HOST_QUEUES[host.name]:
                name = f"{queue}@{host.name}"
                process = _start(on_host(host, [str(ROOT / "compose/app/start-worker"), queue, "1"]), host_env,
                                 logs / f"{name}.log")
                stack.callback(_stop, process)
                spread.workers[name] = process
        for name, process in spread.workers.items():
            wait_until(lambda n=name, p=process: p.poll() is not None or control.control.ping(destination=[n],
                                                                                                timeout=0.5),
                       f"worker {name} to answer", 120, detail=lambda n=name: spread.log(n))
            assert process.poll() is None, f"{name} exited {process.returncode}:\n{spread.log(name)}"
        yield spread
