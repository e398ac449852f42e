"""Simulated hosts for tests: network namespaces joined to this machine by veth links, each with its own hostname."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

__all__ = ["Host", "network_hosts", "on_host", "namespaces"]

# Private addresses no other test uses: host i is 10.231.i.2, this machine's end of its link 10.231.i.1.
SUBNET = "10.231"


@dataclass(frozen=True)
class Host:
    """One simulated machine: its namespace and hostname, its own address, and this machine's end of
    its link, by name and address (the only address it can reach: no default route, and a loopback of its own)."""

    name: str
    namespace: str
    address: str
    link: str
    gateway: str


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _add(host: Host, cleanup: ExitStack) -> None:
    """Make `host`; each step that succeeded is undone by `cleanup`, and nothing this call did not make."""
    link, inside = host.link, f"{host.link}p"
    _ip("netns", "add", host.namespace)
    cleanup.callback(subprocess.run, ["ip", "netns", "delete", host.namespace], capture_output=True)
    _ip("link", "add", link, "type", "veth", "peer", "name", inside)
    # Deleting either end of a veth pair deletes both, wherever the other end is.
    cleanup.callback(subprocess.run, ["ip", "link", "delete", link], capture_output=True)
    _ip("link", "set", inside, "netns", host.namespace)
    _ip("addr", "add", f"{host.gateway}/30", "dev", link)
    _ip("link", "set", link, "up")
    _ip("-n", host.namespace, "addr", "add", f"{host.address}/30", "dev", inside)
    _ip("-n", host.namespace, "link", "set", inside, "up")
    _ip("-n", host.namespace, "link", "set", "lo", "up")


@contextmanager
def network_hosts(names: tuple[str, ...]) -> Iterator[list[Host]]:
    """One namespace per name, linked to this machine; all removed on the way out, whatever happened."""
    tag = os.getpid() % 100_000  # interface names are at most 15 characters
    hosts = [Host(name, f"cf-{name}-{tag}", f"{SUBNET}.{i}.2", f"cfv{i}-{tag}", f"{SUBNET}.{i}.1")
             for i, name in enumerate(names, start=1)]
    with ExitStack() as cleanup:
        for host in hosts:
            _add(host, cleanup)
        yield hosts


def on_host(host: Host, argv: list[str]) -> list[str]:
    """`argv` as a process of `host`: in its namespace, under its own hostname (a UTS namespace),
    as a worker on another machine would be named."""
    return ["ip", "netns", "exec", host.namespace, "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"',
            host.name, *argv]


def namespaces() -> set[str]:
    """The names of the network namespaces that exist now."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}
