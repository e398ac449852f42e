"""POST /api/manual-update/ queues a run by name; GET polls it."""

from __future__ import annotations

import base64
import json

import pytest

from services.core.pipeline.runs import KINDS
from tests.integration.api.conftest import AUTH
from tests.integration.api.rows import add_run
from tests.utils.broker import queued_messages

# Runs name instruments of the universe, as they must.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("universe")]


def test_a_run_is_queued_with_202_its_id_and_where_to_poll(client):
    response = client.post("/api/manual-update/?task=all", headers=AUTH)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "success" and body["task_type"] == "all" and body["duplicate"] is False
    assert body["task_id"] in body["message"]
    assert response.headers["Location"] == f"/api/manual-update/?task_id={body['task_id']}"


def test_the_run_is_a_pipeline_start_message_on_the_pipeline_list(client, broker):
    response = client.post("/api/manual-update/?task=ohlc&symbol=BTC/USD&timeframe=1h", headers=AUTH)
    task_id = response.get_json()["task_id"]
    messages = queued_messages(broker, "pipeline")
    assert len(messages) == 1
    message = messages[0]
    assert message["headers"]["task"] == "pipeline.start"
    assert message["headers"]["id"] == task_id
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == ["ohlc", {"symbol": "BTC/USD", "timeframe": "1h"}] and kwargs == {"priority": 5}
    assert message["properties"]["priority"] == 4, "the default run priority 5, in kombu Redis's reversed numbers"


def test_a_second_identical_request_returns_the_running_runs_id_marked_duplicate(client, broker):
    first = client.post("/api/manual-update/?task=signals&symbol=ETH/USD", headers=AUTH).get_json()
    second = client.post("/api/manual-update/?task=signals&symbol=ETH/USD", headers=AUTH)
    assert second.status_code == 200
    assert second.get_json()["task_id"] == first["task_id"]
    assert second.get_json()["duplicate"] is True and "already running" in second.get_json()["message"]
    assert len(queued_messages(broker, "pipeline")) == 1


def test_a_different_scope_is_a_different_run(client, broker):
    first = client.post("/api/manual-update/?task=signals&symbol=ETH/USD", headers=AUTH).get_json()
    second = client.post("/api/manual-update/?task=signals&symbol=BTC/USD", headers=AUTH).get_json()
    assert first["task_id"] != second["task_id"] and len(queued_messages(broker, "pipeline")) == 2


def test_the_route_works_without_the_trailing_slash(client):
    assert client.post("/api/manual-update?task=all", headers=AUTH).status_code == 202


def test_an_unknown_task_type_is_refused_listing_the_valid_ones(client, broker):
    response = client.post("/api/manual-update/?task=everything", headers=AUTH)
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == "task"
    assert all(kind in body["message"] for kind in KINDS)
    assert queued_messages(broker, "pipeline") == []


def test_a_missing_task_is_refused_listing_the_valid_ones(client):
    response = client.post("/api/manual-update/", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == "task" and "backfill" in response.get_json()["message"]


@pytest.mark.parametrize(("query", "parameter"), [
    ("task=ohlc&symbol=btcusd", "symbol"),
    ("task=ohlc&symbol=BTC/USD%0A", "symbol"),
    ("task=ohlc&timeframe=1x", "timeframe"),
    ("task=ohlc&timeframe=0h", "timeframe"),
    ("task=backfill&symbol=BTC/USD&since=yesterday", "since"),
    ("task=backfill&symbol=BTC/USD&since=99999999999999999999", "since"),
    ("task=backfill&symbol=BTC/USD&since=2024-01-01&until=2023-01-01", "until"),
    ("task=backfill&symbol=BTC/USD", "since"),
    ("task=backfill&since=2024-01-01", "symbol"),
    ("task=ohlc&symbl=BTC/USD", "symbl"),
    ("task=ohlc&task=signals", "task"),
])
def test_a_malformed_parameter_is_refused_naming_it(client, broker, query, parameter):
    response = client.post(f"/api/manual-update/?{query}", headers=AUTH)
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "error" and body["parameter"] == parameter and body["message"]
    assert queued_messages(broker, "pipeline") == []


def test_a_queued_run_reports_pending(client):
    task_id = client.post("/api/manual-update/?task=all", headers=AUTH).get_json()["task_id"]
    response = client.get(f"/api/manual-update/?task_id={task_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["task_id"] == task_id and body["task_type"] == "all"
    assert body["status"] == "PENDING" and body["ready"] is False and body["successful"] is False
    assert body["result"] == [] and body["error"] is None


def test_a_recorded_run_reports_its_state_and_one_entry_per_instrument_stage(client, engine):
    stages = {
        "BTC/USD 1h": [{"stage": "ohlc", "status": "ok", "seconds": 0.2, "candles": 24},
                       {"stage": "indicators", "status": "ok", "seconds": 0.1}],
        "ETH/USD 1h": [{"stage": "ohlc", "status": "failed", "seconds": 0.3, "error": "BadSymbol: ETH/USD"},
                       {"stage": "indicators", "status": "skipped", "reason": "ohlc failed"}],
    }
    errors = [{"instrument": "ETH/USD 1h", "stage": "ohlc", "error": "BadSymbol: ETH/USD"}]
    add_run(engine, "run-42", kind="all", state="PARTIAL", stages=stages, errors=errors)

    body = client.get("/api/manual-update/?task_id=run-42").get_json()
    assert body["status"] == "PARTIAL" and body["ready"] is True and body["successful"] is False
    assert [(entry["instrument"], entry["stage"], entry["status"]) for entry in body["result"]] == [
        ("BTC/USD 1h", "ohlc", "ok"), ("BTC/USD 1h", "indicators", "ok"),
        ("ETH/USD 1h", "ohlc", "failed"), ("ETH/USD 1h", "indicators", "skipped")]
    assert body["result"][0]["candles"] == 24
    assert "ETH/USD 1h: ohlc: BadSymbol" in body["error"]


def test_polling_without_a_task_id_is_refused(client):
    response = client.get("/api/manual-update/")
    assert response.status_code == 400 and response.get_json()["parameter"] == "task_id"


def test_polling_an_unknown_task_id_is_not_found(client):
    response = client.get("/api/manual-update/?task_id=0b4c3d4e-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.get_json()["parameter"] == "task_id" and "unknown task id" in response.get_json()["message"]


def test_polling_needs_no_token(client, engine):
    add_run(engine, "run-1")
    assert client.get("/api/manual-update/?task_id=run-1").status_code == 200
