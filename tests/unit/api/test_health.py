"""Liveness answers without touching any dependency."""

from __future__ import annotations


def test_liveness_answers_ok_with_redis_and_postgres_unreachable(client):
    response = client.get("/api/health/live")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readiness_names_both_servers_when_neither_is_reachable(client):
    response = client.get("/api/health")
    assert response.status_code == 503
    message = response.get_json()["message"]
    assert "redis unreachable" in message and "postgres unreachable" in message
    assert response.get_json()["checks"]["queues"].startswith("skipped")


def test_health_routes_refuse_parameters(client):
    for path in ("/api/health/live", "/api/health"):
        response = client.get(f"{path}?verbose=1")
        assert response.status_code == 400 and response.get_json()["parameter"] == "verbose", path
        assert response.get_json()["message"].endswith("this route accepts: none")
