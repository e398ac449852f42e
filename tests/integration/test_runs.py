"""Run bookkeeping against real Postgres and Redis: lost runs are failed and their locks freed."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import text

from services.core.pipeline.runs import RunRequest

pytestmark = pytest.mark.integration


@pytest.fixture()
def pipeline(server_settings, engine):
    from services.core.pipeline import tasks as module

    return module


def test_a_run_lost_in_flight_is_failed_by_the_prune_job_and_its_lock_freed(pipeline, engine, redis_url):
    client = redis.Redis.from_url(redis_url)
    lock = RunRequest("all").dedup_key()
    client.set(lock, "lost-run")
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, scope, state, started_at) VALUES
            ('lost-run', 'all', '{}', 'STARTED', now() - interval '7 hours'),
            ('young-run', 'ohlc', '{}', 'STARTED', now() - interval '1 hour')"""))
    result = pipeline.prune_history.run()
    assert result["lost_runs"] == ["lost-run"]
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT id, state FROM pipeline_runs")).all())
    assert states == {"lost-run": "FAILURE", "young-run": "STARTED"}
    assert client.get(lock) is None
