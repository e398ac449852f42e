"""Every failure is JSON in one format, and no bad input ever produces a 500."""

from __future__ import annotations

import logging

import pytest
import redis
from sqlalchemy import create_engine

from services.api.app import create_app
from tests.unit.api.conftest import AUTH
from tests.utils.servers import free_port

# Hostile or careless input for every route and parameter: none of it may reach a 500.
_GARBAGE = ["", " ", "%00", "%0A", "%FF%FE", "'%3B--", "..%2F..", "%E2%82%AC", "1e3", "-0", "9" * 30,
            "0001-01-01T00:00%2B01:00", "9999-12-31T23:59-05:00", "x" * 5000, "null", "[]", "%7B%7D"]
_ROUTES = [
    ("POST", "/api/manual-update/", ("task", "symbol", "timeframe", "since", "until")),
    ("GET", "/api/manual-update/", ("task_id",)),
    ("GET", "/api/instruments", ("active",)),
    ("GET", "/api/candles", ("symbol", "timeframe", "exchange", "since", "until", "limit")),
    ("GET", "/api/signals", ("symbol", "timeframe", "strategy", "exchange", "since", "limit")),
    ("GET", "/api/runs", ("state", "task", "limit")),
]
_VALID = {"task": "backfill", "symbol": "BTC/USD", "since": "2024-01-01", "task_id": "x"}


def _bad_requests():
    for method, path, parameters in _ROUTES:
        for parameter in parameters:
            for garbage in _GARBAGE:
                others = "&".join(f"{name}={value}" for name, value in _VALID.items()
                                  if name in parameters and name != parameter)
                yield method, f"{path}?{others}&{parameter}={garbage}"


def test_no_malformed_parameter_on_any_route_produces_a_server_error(client, engine):
    for method, url in _bad_requests():
        response = client.open(url, method=method, headers=AUTH)
        assert response.status_code < 500, (method, url, response.get_json())
        if response.status_code >= 400:
            body = response.get_json()
            assert body["status"] == "error" and body["message"], (method, url)


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer \u00e9\u00e9"}, {"Authorization": "Bearer " + "x" * 10_000}, {"Authorization": "\t"},
])
def test_odd_authorization_headers_are_a_401_not_a_crash(client, headers):
    assert client.post("/api/manual-update/?task=all", headers=headers).status_code == 401


def test_an_unknown_route_is_a_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json() == {"status": "error", "message": "no such route: /api/nothing-here"}


def test_a_wrong_method_is_a_json_405_with_the_allowed_ones(client):
    response = client.delete("/api/candles")
    assert response.status_code == 405
    assert response.get_json()["status"] == "error" and "GET" in response.get_json()["message"]
    assert "GET" in response.headers["Allow"]
    assert response.content_type == "application/json"


def test_an_unexpected_exception_is_a_generic_json_500_and_is_logged(api, caplog):
    @api.get("/api/explode")
    def explode():
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="services.api.errors"):
        response = api.test_client().get("/api/explode")
    assert response.status_code == 500
    assert response.get_json()["status"] == "error" and "secret" not in response.get_json()["message"]
    assert "secret internals" in caplog.text


def test_reads_with_the_database_down_are_a_503(api_settings, celery, broker):
    dead_db = create_engine(f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/nothing")
    client = create_app(settings=api_settings, celery=celery, redis_client=broker, engine=dead_db).test_client()
    for url in ("/api/instruments", "/api/candles?symbol=BTC/USD", "/api/signals", "/api/runs",
                "/api/manual-update/?task_id=x"):
        response = client.get(url)
        assert response.status_code == 503 and "database" in response.get_json()["message"], url


def test_a_trigger_with_redis_down_is_a_503(api_settings, celery, engine):
    dead_redis = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    client = create_app(settings=api_settings, celery=celery, redis_client=dead_redis, engine=engine).test_client()
    response = client.post("/api/manual-update/?task=all", headers=AUTH)
    assert response.status_code == 503 and "Redis" in response.get_json()["message"]
