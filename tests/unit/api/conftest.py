"""API fixtures for the unit tier: an app whose Redis and Postgres addresses have nothing listening.

Nothing here starts a server. Requests that stop before the database or the broker (bad
parameters, auth, routing, liveness, metrics, the OpenAPI document) behave as in production;
a test that needs a real server belongs in tests/integration/api.
"""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import create_engine

from services.api.app import create_app
from services.core.celery_app import create_celery
from services.core.config import get_settings
from tests.utils.servers import free_port

TOKEN = "unit-token-3b9e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def api_settings(monkeypatch):
    """Settings read from an environment whose server URLs point at closed ports (cache cleared both ways)."""
    environment = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                   "DATABASE_URL": f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/nothing",
                   "API_TOKEN": TOKEN, "ENVIRONMENT": "test", "EXCHANGE": "kraken", "SYMBOLS": "BTC/USD,ETH/USD",
                   "TIMEFRAMES": "1h,4h"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture()
def api(api_settings):
    """The app with unreachable collaborators: anything that does reach them answers 503, never a hang."""
    celery = create_celery()
    dead_redis = redis.Redis.from_url(api_settings.redis_url, socket_connect_timeout=1)
    dead_db = create_engine(api_settings.database_url, connect_args={"connect_timeout": 1})
    yield create_app(settings=api_settings, celery=celery, redis_client=dead_redis, engine=dead_db)
    dead_db.dispose()
    celery.close()


@pytest.fixture()
def client(api):
    return api.test_client()
