"""Database access: one pooled engine per URL, safe across a worker's fork."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from services.core.config import get_settings

__all__ = ["engine_for", "get_engine", "forget_engines_after_fork"]

_ENGINES: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """A pooled engine for `url`; pre-ping so a restarted Postgres costs one retry, not a crash."""
    if url not in _ENGINES:
        # A host that drops packets must fail a health check in seconds, not hang it.
        _ENGINES[url] = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                                      connect_args={"connect_timeout": 5})
    return _ENGINES[url]


def forget_engines_after_fork() -> None:
    """In a forked child, drop inherited pools without closing the parent's sockets."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)


def get_engine() -> Engine:
    """The engine for the configured DATABASE_URL."""
    return engine_for(get_settings().database_url)
