"""Runs under operator control over HTTP, against real Redis and Postgres: priority, delay, cancel, listing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.core.pipeline.runs import RunRequest
from services.core.priority import PRIORITY_STEPS, priority_keys
from tests.integration.api.conftest import AUTH
from tests.integration.api.rows import add_run

# Runs name instruments of the universe, as they must.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("universe")]


def waiting(broker, queue: str = "pipeline") -> dict[str, list[dict]]:
    """Redis list → the messages waiting in it, for every priority list of `queue` that holds any."""
    lists = {key: [json.loads(raw) for raw in broker.lrange(key, 0, -1)]
             for key in priority_keys(queue, PRIORITY_STEPS)}
    return {key: messages for key, messages in lists.items() if messages}


def trigger(client, query: str):
    return client.post(f"/api/manual-update/?{query}", headers=AUTH)


def test_an_urgent_run_goes_on_the_pipeline_queues_most_urgent_list_and_its_status_says_so(client, broker):
    response = trigger(client, "task=ohlc&priority=9")
    assert response.status_code == 202 and response.get_json()["priority"] == 9
    run_id = response.get_json()["task_id"]
    lists = waiting(broker)
    # kombu's Redis transport pops its lowest number first: operator 9 is broker 0, the bare list.
    assert list(lists) == ["pipeline"]
    message = lists["pipeline"][0]
    assert message["headers"]["id"] == run_id and message["properties"]["priority"] == 0
    _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert kwargs == {"priority": 9}
    assert client.get(f"/api/runs/{run_id}").get_json()["priority"] == 9


def test_priority_is_not_part_of_the_deduplication_key(client):
    first = trigger(client, "task=ohlc&symbol=BTC/USD&priority=1").get_json()
    second = trigger(client, "task=ohlc&symbol=BTC/USD&priority=8")
    assert second.status_code == 200 and second.get_json()["duplicate"] is True
    assert second.get_json()["task_id"] == first["task_id"]


@pytest.mark.parametrize(("query", "parameter", "words"), [
    ("task=ohlc&priority=10", "priority", "from 0 to 9"),
    ("task=ohlc&priority=-1", "priority", "from 0 to 9"),
    ("task=ohlc&priority=high", "priority", "from 0 to 9"),
    ("task=ohlc&countdown=0", "countdown", "from 1 to 86400"),
    ("task=ohlc&countdown=86401", "countdown", "from 1 to 86400"),
    ("task=ohlc&eta=2020-01-01T00:00:00Z", "eta", "not in the future"),
    ("task=ohlc&eta=2999-01-01T00:00:00Z", "eta", "24 h ahead"),
    ("task=ohlc&eta=tomorrow", "eta", "malformed date"),
    ("task=ohlc&countdown=60&eta=2999-01-01T00:00:00Z", "eta", "not both"),
])
def test_a_bad_priority_or_delay_is_refused_naming_it_and_nothing_is_queued(client, broker, query, parameter, words):
    response = trigger(client, query)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["parameter"] == parameter and words in body["message"], body
    assert waiting(broker) == {}


def test_a_delayed_run_is_scheduled_at_once_listed_and_takes_no_lock_until_it_starts(client, broker):
    before = datetime.now(UTC)
    response = trigger(client, "task=ohlc&symbol=ETH/USD&countdown=600&priority=7")
    assert response.status_code == 202
    body = response.get_json()
    scheduled_for = datetime.fromisoformat(body["scheduled_for"])
    assert before + timedelta(seconds=600) <= scheduled_for <= datetime.now(UTC) + timedelta(seconds=600)

    status = client.get(f"/api/runs/{body['task_id']}").get_json()
    assert status["status"] == "SCHEDULED" and status["ready"] is False and status["priority"] == 7
    assert datetime.fromisoformat(status["scheduled_for"]) == scheduled_for
    listed = client.get("/api/runs?state=scheduled").get_json()["runs"]
    assert [run["task_id"] for run in listed] == [body["task_id"]]
    (message,) = [m for messages in waiting(broker).values() for m in messages]
    assert message["headers"]["id"] == body["task_id"]
    assert datetime.fromisoformat(message["headers"]["eta"]) == scheduled_for
    assert broker.get(RunRequest("ohlc", symbol="ETH/USD").dedup_key()) is None
    now = trigger(client, "task=ohlc&symbol=ETH/USD")
    assert now.status_code == 202 and now.get_json()["task_id"] != body["task_id"]


def test_eta_schedules_the_run_for_that_instant(client):
    eta = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    body = trigger(client, f"task=all&eta={eta.isoformat().replace('+00:00', 'Z')}").get_json()
    assert datetime.fromisoformat(body["scheduled_for"]) == eta
    assert client.get(f"/api/runs/{body['task_id']}").get_json()["status"] == "SCHEDULED"


def test_cancelling_a_queued_run_ends_it_cancelled_by_the_token_and_frees_its_lock(client, broker):
    run_id = trigger(client, "task=indicators&symbol=BTC/USD").get_json()["task_id"]
    lock = RunRequest("indicators", symbol="BTC/USD").dedup_key()
    assert broker.get(lock).decode() == run_id

    response = client.post(f"/api/runs/{run_id}/cancel", headers=AUTH)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "CANCELLED" and body["ready"] is True and body["successful"] is False
    assert body["cancelled_by"] == "api-token" and body["cancelled_at"] and body["finished_at"]
    assert body["completed"] == [] and body["not_completed"] == []  # it never planned its instruments
    assert broker.get(lock) is None
    again = trigger(client, "task=indicators&symbol=BTC/USD")
    assert again.status_code == 202 and again.get_json()["task_id"] != run_id
    assert client.get(f"/api/manual-update/?task_id={run_id}").get_json()["status"] == "CANCELLED"


def test_cancelling_a_scheduled_run_cancels_it_before_it_starts(client):
    run_id = trigger(client, "task=ohlc&countdown=900").get_json()["task_id"]
    assert client.post(f"/api/runs/{run_id}/cancel", headers=AUTH).get_json()["status"] == "CANCELLED"
    assert [run["task_id"] for run in client.get("/api/runs?state=cancelled").get_json()["runs"]] == [run_id]


def test_cancelling_a_finished_run_is_a_conflict_naming_its_state(client, engine):
    add_run(engine, "run-done", state="PARTIAL")
    response = client.post("/api/runs/run-done/cancel", headers=AUTH)
    assert response.status_code == 409
    body = response.get_json()
    assert body["state"] == "PARTIAL" and "already PARTIAL" in body["message"] and body["parameter"] == "run_id"


def test_cancelling_twice_is_a_conflict_the_second_time(client):
    run_id = trigger(client, "task=ohlc").get_json()["task_id"]
    assert client.post(f"/api/runs/{run_id}/cancel", headers=AUTH).status_code == 200
    second = client.post(f"/api/runs/{run_id}/cancel", headers=AUTH)
    assert second.status_code == 409 and second.get_json()["state"] == "CANCELLED"


def test_cancelling_an_unknown_run_is_not_found_and_needs_the_token(client):
    assert client.post("/api/runs/no-such-run/cancel", headers=AUTH).status_code == 404
    anonymous = client.post("/api/runs/no-such-run/cancel")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")


def test_one_run_is_served_at_its_own_path_as_the_status_route_serves_it(client, engine):
    add_run(engine, "run-7", state="SUCCESS")
    assert client.get("/api/runs/run-7").get_json() == client.get("/api/manual-update/?task_id=run-7").get_json()
    missing = client.get("/api/runs/run-8")
    assert missing.status_code == 404 and missing.get_json()["parameter"] == "run_id"
    assert client.get("/api/runs/run-7?verbose=1").get_json()["parameter"] == "verbose"


def _add_covering_run(engine, run_id: str, scope: dict, batches: list[list[str]], created_at: datetime,
                      state: str = "SUCCESS") -> None:
    from sqlalchemy import text

    add_run(engine, run_id, kind="ohlc", state=state, created_at=created_at)
    with engine.begin() as conn:
        conn.execute(text("UPDATE pipeline_runs SET scope = CAST(:s AS jsonb), batches = CAST(:b AS jsonb) "
                          "WHERE id = :id"), {"id": run_id, "s": json.dumps(scope), "b": json.dumps(batches)})


def test_the_listing_filters_by_symbol_covered_state_kind_and_creation_time(client, engine):
    day = datetime(2024, 1, 1, tzinfo=UTC)
    _add_covering_run(engine, "all-btc-eth", {}, [["BTC/USD 1h", "ETH/USD 1h"]], day)
    _add_covering_run(engine, "only-eth", {"symbol": "ETH/USD"}, [["ETH/USD 1h"]], day + timedelta(days=1))
    _add_covering_run(engine, "only-btc", {"symbol": "BTC/USD"}, [["BTC/USD 1h"]], day + timedelta(days=2),
                      state="FAILURE")
    add_run(engine, "all-kind", kind="all", created_at=day + timedelta(days=3))

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/runs?{query}")
        assert response.status_code == 200, response.get_json()
        return [run["task_id"] for run in response.get_json()["runs"]]

    assert ids("symbol=BTC/USD") == ["only-btc", "all-btc-eth"]
    assert ids("symbol=ETH/USD&task=ohlc") == ["only-eth", "all-btc-eth"]
    assert ids("state=failure") == ["only-btc"]
    assert ids("since=2024-01-02&until=2024-01-04") == ["only-btc", "only-eth"]
    assert ids("task=all") == ["all-kind"]
    assert ids("limit=1") == ["all-kind"]
    bad = client.get("/api/runs?since=2024-01-04&until=2024-01-02").get_json()
    assert bad["parameter"] == "until" and "after since" in bad["message"]
    assert client.get("/api/runs?symbol=btc").get_json()["parameter"] == "symbol"
