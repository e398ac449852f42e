"""Suite-wide fixtures: real Redis and PostgreSQL servers, started once, only when asked for."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from tests.utils.servers import postgres_server, redis_server

# Settings are read from the environment; a developer's own .env must not leak in.
os.environ.setdefault("ENVIRONMENT", "test")


@pytest.fixture(scope="session")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url():
    from services.core.migrate import upgrade_database

    with postgres_server() as url:
        upgrade_database(url)
        yield url


def empty_database(engine) -> None:
    """Truncate every table but Alembic's, so a test never sees another test's rows."""
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalar_one()
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture()
def engine(database_url):
    """An engine on a database emptied before each test."""
    engine = create_engine(database_url)
    empty_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def fresh_servers(redis_url, database_url):
    """Both servers emptied once for a module that runs long-lived processes against them:
    no rows, and no queued messages left behind by earlier tests."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    engine = create_engine(database_url)
    empty_database(engine)
    engine.dispose()
    return redis_url, database_url


@pytest.fixture()
def server_settings(monkeypatch, database_url, redis_url):
    """The process settings pointed at the suite's servers (the settings cache cleared both ways)."""
    from services.core import config

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    config.get_settings.cache_clear()
    yield config.get_settings()
    config.get_settings.cache_clear()
