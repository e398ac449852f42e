"""Readiness against real servers: it names whatever is missing."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import create_engine

from services.api.app import create_app
from tests.utils.servers import free_port

pytestmark = pytest.mark.integration


def test_readiness_is_503_naming_every_queue_without_a_worker(client):
    response = client.get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    for queue in ("ingest", "indicators", "signals", "pipeline"):
        assert f"no worker consuming queue '{queue}'" in body["message"]
    assert body["checks"]["redis"] == "ok" and body["checks"]["postgres"] == "ok"
    assert body["checks"]["queues"] == {"ingest": [], "indicators": [], "signals": [], "pipeline": []}


def test_readiness_names_redis_when_it_is_unreachable_and_skips_asking_workers(api_settings, celery, engine):
    dead_redis = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    client = create_app(settings=api_settings, celery=celery, redis_client=dead_redis, engine=engine).test_client()
    body = client.get("/api/health").get_json()
    assert "redis unreachable" in body["message"]
    assert body["checks"]["queues"].startswith("skipped")
    assert body["checks"]["postgres"] == "ok"


def test_readiness_names_postgres_when_it_is_unreachable(api_settings, celery, broker):
    dead_db = create_engine(f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/nothing")
    client = create_app(settings=api_settings, celery=celery, redis_client=broker, engine=dead_db).test_client()
    response = client.get("/api/health")
    assert response.status_code == 503 and "postgres unreachable" in response.get_json()["message"]
    assert response.get_json()["checks"]["redis"] == "ok"


def publishes(client: redis.Redis) -> int:
    """PUBLISH commands Redis has served: a worker broadcast (inspect) is one."""
    return int(client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))


def test_readiness_is_served_from_the_background_view_without_asking_the_workers_per_request(
        api_settings, celery, broker, engine):
    settings = api_settings.model_copy(update={"api_health_refresh_s": 60.0})
    client = create_app(settings=settings, celery=celery, redis_client=broker, engine=engine).test_client()
    idle = publishes(broker)
    first = client.get("/api/health").get_json()  # the process's first call waits for one round of checks
    assert publishes(broker) > idle, "one round of checks asks the workers (so the count below can move)"
    assert first["checks"]["queues"] == {"ingest": [], "indicators": [], "signals": [], "pipeline": []}
    before = publishes(broker)
    answers = [client.get("/api/health").get_json() for _ in range(20)]
    assert publishes(broker) == before, "no request asked the workers itself"
    assert {answer["checked_at"] for answer in answers} == {first["checked_at"]}
    assert all(answer["age_s"] >= 0 for answer in answers)
    assert answers[-1]["age_s"] >= answers[0]["age_s"]


def _with_broker(monkeypatch, url: str):
    """Settings and a Celery app whose BROKER_URL is `url` (REDIS_URL unchanged)."""
    from services.core.celery_app import create_celery
    from services.core.config import get_settings

    monkeypatch.setenv("BROKER_URL", url)
    get_settings.cache_clear()
    return get_settings(), create_celery()


def test_readiness_asks_a_broker_of_its_own_and_names_it_when_it_is_unreachable(api_settings, broker, engine,
                                                                                monkeypatch):
    settings, celery = _with_broker(monkeypatch, f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    try:
        response = create_app(settings=settings, celery=celery, redis_client=broker, engine=engine).test_client() \
            .get("/api/health")
    finally:
        celery.close()
    body = response.get_json()
    assert response.status_code == 503 and "broker unreachable" in body["message"], body
    assert body["checks"]["broker"].startswith("error") and body["checks"]["redis"] == "ok"
    assert body["checks"]["queues"].startswith("skipped")


def test_readiness_reports_the_broker_ok_when_it_answers(api_settings, broker, engine, redis_url, monkeypatch):
    # Another URL on the same server: the broker counts as a server of its own and is asked.
    settings, celery = _with_broker(monkeypatch, redis_url.rsplit("/", 1)[0] + "/5")
    try:
        body = create_app(settings=settings, celery=celery, redis_client=broker, engine=engine).test_client() \
            .get("/api/health").get_json()
    finally:
        celery.close()
    assert body["checks"]["broker"] == "ok" and isinstance(body["checks"]["queues"], dict), body
