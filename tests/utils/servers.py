"""Throwaway Redis and PostgreSQL servers for the test suite, on free ports in temp dirs."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "redis_server", "RestartableRedis", "restartable_redis", "postgres_server", "wait_for_port"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None,
                  host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on `host`:`port`; fail loudly if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: run `make test` (it installs it) or apt-get install redis-server")
    return binary


class RestartableRedis:
    """A redis-server as production runs it (AOF on, noeviction) that a test can stop and start again
    on the same port and data: an outage as clients see it."""

    def __init__(self, workdir: str) -> None:
        self.port, self.workdir = free_port(), workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.workdir,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes its AOF and exits, as `docker stop` does
            self.process.wait(10)


@contextmanager
def restartable_redis() -> Iterator[RestartableRedis]:
    """A started RestartableRedis, stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="cf-redis-") as workdir:
        server = RestartableRedis(workdir)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def redis_server(addresses: tuple[str, ...] = ("127.0.0.1",)) -> Iterator[str]:
    """A real redis-server with the production persistence/eviction settings, listening on `addresses`;
    yields its URL on the first."""
    binary = _redis_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cf-redis-") as workdir:
        # Protected mode would refuse the clients on any address but loopback; these addresses are
        # the suite's own (loopback, or the veth links of tests/hosts' namespaces).
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", *addresses, "--protected-mode", "no", "--dir", workdir,
             "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, process=process, host=addresses[0])
            yield f"redis://{addresses[0]}:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL {name} not found: run `make test` (it installs postgresql)")
    return found[-1]


def _as_postgres_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root, so drop to the package's system user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextmanager
def postgres_server(addresses: tuple[str, ...] = ("127.0.0.1",), clients: tuple[str, ...] = ()) -> Iterator[str]:
    """A real PostgreSQL cluster in a temp dir, listening on `addresses` and trusting local connections and
    those from the networks `clients` (CIDR); yields a SQLAlchemy URL for db `candleflow` on the first address."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cf-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        workdir.chmod(0o700)
    subprocess.run(
        _as_postgres_user([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "candleflow", "--no-sync"]),
        check=True, stdout=subprocess.DEVNULL,
    )
    with open(data / "pg_hba.conf", "a") as hba:
        hba.writelines(f"host all all {network} trust\n" for network in clients)
    options = f"-p {port} -k {workdir} -c listen_addresses={','.join(addresses)} -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_postgres_user([_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(workdir / "log"),
                           "-w", "start"]),
        check=True, stdout=subprocess.DEVNULL,
    )
    try:
        subprocess.run(
            _as_postgres_user([_pg_bin("createdb"), "-h", addresses[0], "-p", str(port), "-U", "candleflow",
                               "candleflow"]),
            check=True,
        )
        yield f"postgresql+psycopg2://candleflow@{addresses[0]}:{port}/candleflow"
    finally:
        subprocess.run(_as_postgres_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(workdir, ignore_errors=True)
