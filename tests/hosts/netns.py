"""Simulated hosts for tests: network namespaces joined to this machine by veth links, each with its own hostname."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

__all__ = ["Host", "network_hosts", "on_host"]

# Private addresses no other test uses: host i is 10.231.i.2, this machine's end of its link 10.231.i.1.
SUBNET = "10.231"


@dataclass(frozen=True)
class Host:
    """One simulated machine: its namespace and hostname, its own address, and this machine's address
    on its link (the only address it can reach: no default route, no loopback shared with us)."""

    name: str
    namespace: str
    address: str
    gateway: str


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _remove(host: Host, link: str) -> None:
    # Deleting the namespace destroys the veth inside it and, with it, its peer here; the link is
    # deleted by name as well in case setup stopped before it moved the peer in.
    subprocess.run(["ip", "netns", "delete", host.namespace], capture_output=True)
    subprocess.run(["ip", "link", "delete", link], capture_output=True)


def _add(host: Host, link: str) -> None:
    inside = f"{link}p"
    _ip("netns", "add", host.namespace)
    _ip("link", "add", link, "type", "veth", "peer", "name", inside)
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
    hosts = [Host(name, f"cf-{name}-{tag}", f"{SUBNET}.{i}.2", f"{SUBNET}.{i}.1")
             for i, name in enumerate(names, start=1)]
    with ExitStack() as cleanup:
        for i, host in enumerate(hosts, start=1):
            link = f"cfv{i}-{tag}"
            cleanup.callback(_remove, host, link)
            _add(host, link)
        yield hosts


def on_host(host: Host, argv: list[str]) -> list[str]:
    """`argv` as a process of `host`: in its namespace, under its own hostname (a UTS namespace),
    as a worker on another machine would be named."""
    return ["ip", "netns", "exec", host.namespace, "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"',
            host.name, *argv]
