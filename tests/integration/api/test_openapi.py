"""Over HTTP against real servers: every documented parameter is one the route really accepts."""

from __future__ import annotations

import io

import pytest

from services.api.openapi import openapi_document
from tests.integration.api.conftest import AUTH

pytestmark = pytest.mark.integration

# A valid value for each parameter name the API uses, chosen to be valid together (a backfill needs
# symbol and since); a new name without a sample fails the test with a KeyError naming it.
_SAMPLES = {"symbol": "BTC/USD", "timeframe": "1h", "since": "2024-01-01", "until": "2024-01-02", "limit": "1",
            "strategy": "x", "exchange": "kraken", "state": "SUCCESS", "task": "backfill", "active": "true",
            "task_id": "x", "run_id": "x", "priority": "9", "countdown": "60", "eta": "2999-01-01T00:00:00Z",
            "name": "pipeline-all-hourly", "add": "false", "quote": "USD", "type": "spot", "listed": "true",
            "format": "csv", "columns": "rsi,adx"}
# Parameters that exclude another (the value): the value is sent, the key left out.
_EITHER = {"eta": "countdown", "days": "since", "hours": "since", "bars": "since"}
# A valid JSON body for each route that takes one, by operationId.
_BODIES = {"addSchedule": {"name": "openapi-probe", "task": "all", "every": 60}, "changeSchedule": {"priority": 5},
           "addInstrument": {"symbol": "ETH/USD"}, "changeInstrument": {"active": True}}
# A valid multipart form for each route that takes an upload, by operationId.
_FORMS = {"startImport": lambda: {"exchange": "XNYS", "timeframe": "1d", "symbol": "MSFT",
                                  "file": (io.BytesIO(b"Date,Open,High,Low,Close,Volume\n"), "f.csv")}}


def _body(operation: dict) -> dict:
    if "requestBody" not in operation:
        return {}
    if operation["operationId"] in _FORMS:
        return {"data": _FORMS[operation["operationId"]](), "content_type": "multipart/form-data"}
    return {"json": _BODIES[operation["operationId"]]}


def test_every_route_accepts_all_its_documented_parameters_at_once(api, client, engine):
    from services.core.store.instruments import seed_instruments

    with engine.begin() as conn:  # the trigger's symbol must be in the universe
        seed_instruments(conn, "kraken", ["BTC/USD"], ["1h"])
    sent = 0
    for path, item in openapi_document(api)["paths"].items():
        for method, operation in item.items():
            parameters = operation.get("parameters", [])
            names = [parameter["name"] for parameter in parameters
                     if parameter["in"] == "query" and parameter["name"] not in _EITHER]
            query = "&".join(f"{name}={_SAMPLES[name]}" for name in names)
            url = path.format(**{p["name"]: _SAMPLES[p["name"]] for p in parameters if p["in"] == "path"})
            body = _body(operation)
            response = client.open(f"{url}?{query}", method=method.upper(), headers=AUTH, **body)
            assert response.status_code != 400, (method, path, response.get_json())
            sent += len(names)
    assert sent >= 20  # the routes' parameters were really sent, not skipped
