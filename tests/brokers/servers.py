"""Throwaway brokers for the broker suite: a RabbitMQ node and a Redis Sentinel group, on free ports in temp dirs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.utils.servers import free_port, wait_for_port

__all__ = ["RabbitMQ", "rabbitmq_server", "SentinelGroup", "sentinel_group", "SENTINEL_MASTER", "tls_redis_server"]

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
SENTINEL_MASTER = "cfmaster"
# A RabbitMQ node boots in 5-15 s on a loaded machine; the listener opens last.
RABBITMQ_BOOT_S = 120


class RabbitMQ:
    """A started node: its AMQP URL, its management API (when asked for), its log."""

    def __init__(self, url: str, management_url: str | None, log: Path, process: subprocess.Popen) -> None:
        self.url, self.management_url, self.log_path, self.process = url, management_url, log, process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the node's processes have used so far, from /proc (bench/broker_depth.py)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[2]) == self.process.pid:  # the process group start_new_session made
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def rabbitmq_server(management: bool = False) -> Iterator[RabbitMQ]:
    """Debian's rabbitmq-server as its own node (name, ports, Mnesia and epmd all private to it)."""
    if not RABBITMQ_SERVER.exists():
        raise RuntimeError("rabbitmq-server not found: run `make test-brokers` (it installs it)")
    port, dist_port, epmd_port, management_port = free_port(), free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cf-rabbitmq-"))
    (workdir / "enabled_plugins").write_text("[rabbitmq_management]." if management else "[].")
    # guest may connect from 127.0.0.1 only by default, which is all the suite needs; the consumer
    # timeout is the one production sets too (compose/rabbitmq/rabbitmq.conf): longer than any task.
    (workdir / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\nconsumer_timeout = 7200000\n"
        + (f"management.tcp.port = {management_port}\nmanagement.tcp.ip = 127.0.0.1\n" if management else ""))
    env = {**os.environ, "HOME": str(workdir), "RABBITMQ_NODENAME": f"cf{port}@localhost",
           "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(dist_port), "ERL_EPMD_PORT": str(epmd_port),
           "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"), "RABBITMQ_LOG_BASE": str(workdir / "log"),
           "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"), "RABBITMQ_PID_FILE": str(workdir / "pid"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins")}
    log = workdir / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(RABBITMQ_SERVER)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for_port(port, RABBITMQ_BOOT_S, process)
        if management:
            wait_for_port(management_port, RABBITMQ_BOOT_S, process)
        yield RabbitMQ(f"amqp://guest:guest@127.0.0.1:{port}//",
                       f"http://127.0.0.1:{management_port}" if management else None, log, process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
        # epmd daemonizes out of the node's process group; it is ours (its own port), so stop it.
        subprocess.run(["epmd", "-port", str(epmd_port), "-kill"], env=env, capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: run `make test` (it installs it)")
    return binary


class SentinelGroup:
    """One master, one replica and `sentinels` sentinels watching them, all on 127.0.0.1."""

    def __init__(self, workdir: Path, sentinels: int) -> None:
        self.workdir = workdir
        self.ports = {"master": free_port(), "replica": free_port()}
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        """The BROKER_URL / RESULT_BACKEND that reaches the group (with BROKER_SENTINEL_MASTER)."""
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.sentinel_ports)

    def _start(self, name: str, argv: list[str], port: int) -> None:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        wait_for_port(port, process=self.processes[name])

    def start(self) -> None:
        server = [_redis_binary(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--maxmemory-policy", "noeviction"]
        master, replica = self.ports["master"], self.ports["replica"]
        self._start("master", [*server, "--port", str(master), "--dir", str(self.workdir)], master)
        self._start("replica", [*server, "--port", str(replica), "--dir", str(self.workdir),
                                "--replicaof", "127.0.0.1", str(master)], replica)
        quorum = len(self.sentinel_ports) // 2 + 1
        for n, port in enumerate(self.sentinel_ports):
            conf = self.workdir / f"sentinel-{n}.conf"  # sentinels rewrite their file: one each, writable
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                            f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master} {quorum}\n"
                            f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
                            f"sentinel failover-timeout {SENTINEL_MASTER} 5000\n")
            self._start(f"sentinel-{n}", [_redis_binary(), str(conf), "--sentinel"], port)
        self.wait_until_replicated()

    def master_port(self) -> int:
        """The master's port as the first sentinel announces it."""
        client = redis.Redis(port=self.sentinel_ports[0], socket_timeout=2)
        _host, port = client.sentinel_get_master_addr_by_name(SENTINEL_MASTER)
        return int(port)

    def wait_until_replicated(self, timeout: float = 60.0) -> None:
        """Until the replica is in sync and every sentinel knows it (a failover needs both)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = redis.Redis(port=self.ports["replica"], socket_timeout=2).info("replication")
            known = [redis.Redis(port=p, socket_timeout=2).sentinel_slaves(SENTINEL_MASTER)
                     for p in self.sentinel_ports]
            if info.get("master_link_status") == "up" and all(replicas for replicas in known):
                return
            time.sleep(0.2)
        raise RuntimeError(f"replica not in sync after {timeout}s; logs in {self.workdir}")

    def wait_until_caught_up(self, timeout: float = 30.0) -> None:
        """Until the replica has applied every write the master took (replication is asynchronous)."""
        master = redis.Redis(port=self.ports["master"], socket_timeout=2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = master.info("replication")
            replica = info.get("slave0") or {}
            if replica.get("offset") == info["master_repl_offset"]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"replica still behind after {timeout}s")

    def kill_master(self, timeout: float = 60.0) -> int:
        """SIGKILL the master (no goodbye to anyone) and wait for the sentinels to promote the replica;
        the new master's port."""
        self.processes["master"].kill()
        self.processes["master"].wait(10)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.master_port() == self.ports["replica"]:
                return self.ports["replica"]
            time.sleep(0.2)
        raise RuntimeError(f"no failover after {timeout}s; logs in {self.workdir}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(10)


@contextmanager
def sentinel_group(sentinels: int = 1) -> Iterator[SentinelGroup]:
    """A started SentinelGroup, stopped and removed at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="cf-sentinel-"))
    group = SentinelGroup(workdir, sentinels)
    try:
        group.start()
        yield group
    finally:
        group.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _certificates(workdir: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (openssl), in `workdir`."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=candleflow-test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
    (workdir / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.cnf", "-out", "server.crt")


@contextmanager
def tls_redis_server() -> Iterator[str]:
    """A redis-server that speaks TLS only; yields its rediss:// URL, verifying the server against the test CA."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cf-redis-tls-"))
    _certificates(workdir)
    process = subprocess.Popen(
        [_redis_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=process)
        yield f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={workdir / 'ca.crt'}"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
