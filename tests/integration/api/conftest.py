"""API fixtures for the integration tier: an app wired to the suite's real Redis and Postgres, and a test client."""

from __future__ import annotations

import pytest
import redis

from services.api.app import create_app
from services.core.celery_app import create_celery
from services.core.config import get_settings

TOKEN = "test-token-5f1c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def api_settings(monkeypatch, redis_url, database_url):
    """Settings read from an environment pointing at the test servers.

    get_settings() is cached for the process, so the cache is cleared after the
    environment changes and again on the way out (before monkeypatch restores it).
    """
    environment = {"REDIS_URL": redis_url, "DATABASE_URL": database_url, "API_TOKEN": TOKEN,
                   "ENVIRONMENT": "test", "EXCHANGE": "kraken", "SYMBOLS": "BTC/USD,ETH/USD", "TIMEFRAMES": "1h,4h"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture()
def broker(redis_url):
    """A client on the test Redis, emptied first so no queued message or run lock leaks between tests."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture()
def celery(api_settings):
    app = create_celery()
    yield app
    app.close()


@pytest.fixture()
def api(api_settings, celery, broker, engine):
    return create_app(settings=api_settings, celery=celery, redis_client=broker, engine=engine)


@pytest.fixture()
def universe(api_settings, engine):
    """The instrument universe as `candleflow migrate` seeds it: SYMBOLS × TIMEFRAMES of the test settings."""
    from services.core.store.instruments import seed_instruments

    with engine.begin() as conn:
        return seed_instruments(conn, api_settings.exchange, api_settings.symbols, api_settings.timeframes)


@pytest.fixture()
def client(api):
    return api.test_client()
