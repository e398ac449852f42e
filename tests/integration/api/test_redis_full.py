"""Redis at its maxmemory (noeviction): the trigger answers 503 saying so, and nothing already queued is lost."""

from __future__ import annotations

import pytest
import redis

from services.api.app import create_app
from services.core import keys
from services.core.celery_app import create_celery
from services.core.config import get_settings
from tests.integration.api.conftest import AUTH
from tests.utils.broker import queued
from tests.utils.servers import restartable_redis

pytestmark = pytest.mark.integration


def test_a_full_redis_refuses_new_runs_with_a_503_and_keeps_the_queued_ones(api_settings, engine, universe,
                                                                            monkeypatch):
    with restartable_redis() as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        get_settings.cache_clear()
        settings, celery = get_settings(), create_celery()
        client = redis.Redis.from_url(server.url)
        app = create_app(settings=settings, celery=celery, redis_client=client, engine=engine)
        http = app.test_client()
        first = http.post("/api/manual-update/?task=ohlc&symbol=BTC/USD", headers=AUTH)
        assert first.status_code == 202, first.get_json()
        assert queued(client, "pipeline") == 1
        # At its ceiling, as a backed-up queue leaves it: every write that needs memory is refused.
        client.config_set("maxmemory", client.info("memory")["used_memory"] - 4096)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("probe", "x")
        refused = http.post("/api/manual-update/?task=ohlc&symbol=ETH/USD", headers=AUTH)
        assert refused.status_code == 503, refused.get_json()
        assert "full (maxmemory reached)" in refused.get_json()["message"]
        assert queued(client, "pipeline") == 1  # the first run's start is still there
        assert not client.exists(keys.run_lock("ohlc", {"symbol": "ETH/USD"}))  # no stale lock
        celery.close()
