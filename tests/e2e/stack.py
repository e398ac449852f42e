"""The compose stack under test: `docker compose` commands for one project, and HTTP to its published ports."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ROOT", "ComposeStack", "HttpReply", "free_port", "pick_ports"]

ROOT = Path(__file__).resolve().parents[2]

# Published-port variable → the port docker-compose.yml uses when it is unset.
DEFAULT_PORTS = {
    "API_PORT": 8000, "FLOWER_PORT": 5555, "PROMETHEUS_PORT": 9090, "GRAFANA_PORT": 3000,
    "EXPORTER_PORT": 9808, "POSTGRES_PORT": 5432, "REDIS_PORT": 6379, "SIM_PORT": 8090,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports() -> dict[str, str]:
    """Each published port at its default when that is free on 127.0.0.1, else at a free one."""
    return {name: str(port if _port_is_free(port) else free_port()) for name, port in DEFAULT_PORTS.items()}


@dataclass
class HttpReply:
    status: int
    body: object  # parsed JSON, or the text when the reply is not JSON
    text: str


def http(method: str, url: str, *, token: str | None = None, basic: tuple[str, str] | None = None,
         timeout: float = 15.0, body: object = None) -> HttpReply:
    """One request as an operator's curl would make it; `body` goes as JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, method=method, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(basic).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode(errors="replace")
    try:
        body = json.loads(text) if text else {}
    except json.JSONDecodeError:
        body = text
    return HttpReply(status, body, text)


@dataclass
class ComposeStack:
    """One compose project started from the repository's files with the e2e's own env file."""

    project: str
    env_file: Path
    env: dict[str, str]
    profiles: tuple[str, ...] = ("demo",)
    files: tuple[str, ...] = ("docker-compose.yml",)
    log: list[str] = field(default_factory=list)

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "--project-name", self.project, "--project-directory", str(ROOT),
                   "--env-file", str(self.env_file)]
        for name in self.files:
            command += ["--file", str(ROOT / name)]
        for profile in self.profiles:
            command += ["--profile", profile]
        command += list(args)
        self.log.append(" ".join(command[2:]))
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"`docker compose {' '.join(args)}` failed ({result.returncode}):\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def containers(self) -> list[dict]:
        """`docker compose ps -a` as dicts (Service, State, Health, ExitCode, Name, …)."""
        out = self.compose("ps", "--all", "--format", "json").stdout.strip()
        if not out:
            return []
        if out.startswith("["):  # older compose versions print one array
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_healthy(self, services: set[str] | None = None, timeout: float = 300.0,
                     one_shots: frozenset[str] = frozenset({"migrate"})) -> None:
        """Until every container (of `services`, default all) is healthy, or exited 0 for one-shots."""
        deadline = time.monotonic() + timeout
        pending: list[str] = ["nothing seen yet"]
        while time.monotonic() < deadline:
            pending = []
            for c in self.containers():
                if services is not None and c["Service"] not in services:
                    continue
                if c["Service"] in one_shots:
                    if c["State"] == "exited" and c.get("ExitCode") not in (0, None):
                        raise AssertionError(f"{c['Name']} failed (exit {c['ExitCode']}):\n"
                                             + self.logs(c["Service"])[-3000:])
                    if c["State"] != "exited":
                        pending.append(f"{c['Name']}: {c['State']}")
                elif c["State"] != "running":
                    raise AssertionError(f"{c['Name']} is {c['State']}:\n" + self.logs(c["Service"])[-3000:])
                elif c.get("Health") not in ("healthy", ""):
                    pending.append(f"{c['Name']}: {c.get('Health')}")
            if not pending:
                return
            time.sleep(2)
        raise AssertionError(f"not healthy after {timeout:.0f} s: {pending}")

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service, check=False).stdout

    def url(self, port_variable: str, path: str) -> str:
        return f"http://127.0.0.1:{self.env[port_variable]}{path}"
