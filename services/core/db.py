"""Database access: one pooled engine per URL, safe across a worker's fork."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError

from services.core.config import get_settings

__all__ = ["engine_for", "get_engine", "forget_engines_after_fork", "each_in_savepoint", "connection_budget"]

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

_ENGINES: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """A pooled engine for `url`; pre-ping so a restarted Postgres costs one retry, not a crash."""
    if url not in _ENGINES:
        settings = get_settings()
        # A host that drops packets must fail a health check in seconds, not hang it.
        _ENGINES[url] = create_engine(url, pool_pre_ping=True, pool_size=settings.db_pool_size,
                                      max_overflow=settings.db_max_overflow, connect_args={"connect_timeout": 5})
    return _ENGINES[url]


def connection_budget(hosts: int, processes_per_host: int, pool_size: int, max_overflow: int) -> int:
    """The most Postgres connections the processes can hold: hosts × processes × (pool + overflow).

    Each process has its own pool (a prefork child too: pools are not shared across a fork), and a
    pool never holds more than pool_size + max_overflow connections; docs/scaling.md sets this
    against Postgres' max_connections.
    """
    for name, value in (("hosts", hosts), ("processes_per_host", processes_per_host), ("pool_size", pool_size),
                        ("max_overflow", max_overflow)):
        if value < 0:
            raise ValueError(f"{name} must be 0 or more, got {value}")
    return hosts * processes_per_host * (pool_size + max_overflow)


def forget_engines_after_fork() -> None:
    """In a forked child, drop inherited pools without closing the parent's sockets."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)


def get_engine() -> Engine:
    """The engine for the configured DATABASE_URL."""
    return engine_for(get_settings().database_url)


def each_in_savepoint(conn: Connection, items: Mapping[K, V], work: Callable[[V], R]) -> dict[K, R | Exception]:
    """`work(value)` for every item, each inside its own savepoint; per key its result or exception.

    One item that fails is rolled back alone, leaving the others' work in the transaction.
    A lost connection (OperationalError) cannot be contained by a savepoint: it is raised.
    """
    results: dict[K, R | Exception] = {}
    for key, value in items.items():
        try:
            with conn.begin_nested():
                results[key] = work(value)
        except OperationalError:
            raise
        except Exception as exc:
            results[key] = exc
    return results
