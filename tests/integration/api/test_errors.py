"""Over HTTP against real servers: no bad input ever produces a 500, and unreachable servers are a 503."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import create_engine

from services.api.app import create_app
from tests.integration.api.conftest import AUTH
from tests.utils.servers import free_port

pytestmark = pytest.mark.integration

# Hostile or careless input for every route and parameter: none of it may reach a 500.
_GARBAGE = ["", " ", "%00", "%0A", "%FF%FE", "'%3B--", "..%2F..", "%E2%82%AC", "1e3", "-0", "9" * 30,
            "0001-01-01T00:00%2B01:00", "9999-12-31T23:59-05:00", "x" * 5000, "null", "[]", "%7B%7D"]
_ROUTES = [
    ("POST", "/api/manual-update/", ("task", "symbol", "timeframe", "since", "until", "priority", "countdown", "eta")),
    ("GET", "/api/manual-update/", ("task_id",)),
    ("GET", "/api/instruments", ("active",)),
    ("GET", "/api/candles", ("symbol", "timeframe", "exchange", "since", "until", "limit")),
    ("GET", "/api/signals", ("symbol", "timeframe", "strategy", "exchange", "since", "limit")),
    ("GET", "/api/runs", ("state", "task", "symbol", "since", "until", "limit")),
    ("GET", "/api/runs/x", ("unknown",)),
    ("POST", "/api/runs/x/cancel", ("unknown",)),
]
# Hostile run ids in the path of the routes of one run: a 4xx each, never a 500.
_RUN_ID_GARBAGE = ["%00", "%0A", "%FF%FE", "'%3B--", "%E2%82%AC", "x" * 5000, "null", "%7B%7D", "..", "a%20b"]
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


def test_no_malformed_run_id_produces_a_server_error(client, engine):
    for garbage in _RUN_ID_GARBAGE:
        for method, url in (("GET", f"/api/runs/{garbage}"), ("POST", f"/api/runs/{garbage}/cancel")):
            response = client.open(url, method=method, headers=AUTH)
            assert 400 <= response.status_code < 500, (method, url, response.status_code)
            assert response.get_json()["status"] == "error", (method, url)


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
