"""Each pool process's memory, read by its worker from /proc and served as the `pool_memory` inspect command."""

from __future__ import annotations

import logging
from pathlib import Path

from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.worker.control import inspect_command

__all__ = ["process_memory", "pool_children", "read_children", "pool_memory"]

log = logging.getLogger(__name__)

# /proc/<pid>/status fields → reply keys: the resident set now, and its peak (VmHWM: what Celery's
# WORKER_MAX_MEMORY_PER_CHILD_KB is compared with after each task, as getrusage's ru_maxrss).
_FIELDS = {"VmRSS": "rss_bytes", "VmHWM": "peak_rss_bytes"}


def process_memory(status: str) -> dict[str, int]:
    """The RSS figures of a /proc/<pid>/status text, in bytes (the kernel writes them in kB)."""
    found = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in _FIELDS:
            number, unit = value.split()
            if unit != "kB":
                raise ValueError(f"{name} in {unit!r}, expected kB")
            found[_FIELDS[name]] = int(number) * 1024
    return found


def pool_children(pool: object) -> list[tuple[int, int]]:
    """(index, pid) of each pool process; none for pools that run tasks in the worker's own process."""
    if not isinstance(pool, PreforkPool) or pool._pool is None:
        return []
    # billiard reuses a replaced child's index for its successor, so an index is a stable name.
    return sorted((process.index, process.pid) for process in pool._pool._pool if process.pid)


def read_children(children: list[tuple[int, int]], proc: Path = Path("/proc")) -> list[dict]:
    """Memory of each (index, pid); a child gone since it was listed is left out."""
    found = []
    for index, pid in children:
        try:
            status = (proc / str(pid) / "status").read_text()
        except FileNotFoundError:
            continue
        found.append({"index": index, "pid": pid, **process_memory(status)})
    return found


@inspect_command()
def pool_memory(state) -> dict:
    """RSS and peak RSS of every pool process, with the configured per-child memory limit."""
    limit_kb = state.app.conf.worker_max_memory_per_child
    return {"limit_bytes": limit_kb * 1024 if limit_kb else None,
            "children": read_children(pool_children(state.consumer.pool))}
