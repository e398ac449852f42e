"""Every failure is JSON in one format: routing, methods, bad parameters and unexpected exceptions."""

from __future__ import annotations

import logging

import pytest


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


@pytest.mark.parametrize(("url", "parameter", "message"), [
    ("/api/candles", "symbol", "symbol is required, e.g. symbol=BTC/USD"),
    ("/api/candles?symbol=BTC/USD&limit=0", "limit", "limit must be an integer from 1 to 5000, got '0'"),
    ("/api/runs?limit=501", "limit", "limit must be an integer from 1 to 500, got '501'"),
    ("/api/candles?symbl=BTC/USD", "symbl",
     "unknown parameter 'symbl'; this route accepts: exchange, symbol, timeframe, since, until, limit, format"),
    ("/api/signals?limit=1&limit=2", "limit", "parameter 'limit' given 2 times; give it once"),
    ("/api/manual-update/", "task_id", "task_id is required: the id POST /api/manual-update/ returned"),
])
def test_a_bad_parameter_is_a_400_naming_it_in_the_documented_format(client, url, parameter, message):
    # The database is unreachable here: a parameter that got past validation would answer 503.
    response = client.get(url)
    assert response.status_code == 400
    assert response.content_type == "application/json"
    assert response.get_json() == {"status": "error", "message": message, "parameter": parameter}
