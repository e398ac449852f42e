"""Over HTTP against real Redis and Postgres: the schedule routes, each refusal, the history, and garbage."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from services.core.pipeline.job_plan import DEFAULT_JOBS, seed_jobs
from services.core.pipeline.schedules import reconcile_schedule
from services.core.priority import broker_priority
from tests.integration.api.conftest import AUTH
from tests.utils.broker import queued_messages

pytestmark = pytest.mark.integration

BTC = {"name": "btc-hourly", "task": "ohlc", "scope": {"symbol": "BTC/USD"}, "cron": "5 * * * *",
       "timezone": "UTC", "enabled": True, "priority": 5}


@pytest.fixture()
def seeded(broker, engine, api_settings):
    """The schedule beat start would write: the default jobs."""
    reconcile_schedule(broker, engine, seed_jobs({}, "UTC"), "UTC")
    return broker


def post(client, path, body, headers=AUTH):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def patch(client, name, body):
    return client.patch(f"/api/schedules/{name}", data=json.dumps(body), content_type="application/json",
                        headers=AUTH)


def test_the_list_shows_every_default_job_with_its_next_run(client, seeded):
    body = client.get("/api/schedules").get_json()
    assert body["count"] == len(DEFAULT_JOBS) == len(body["jobs"])
    hourly = next(job for job in body["jobs"] if job["name"] == "pipeline-all-hourly")
    assert hourly["task"] == "all" and hourly["cron"] == "5 * * * *" and hourly["source"] == "default"
    next_run = datetime.fromisoformat(hourly["next_run_at"])
    assert next_run > datetime.now(UTC) and next_run.minute == 5
    assert hourly["last_run_at"] is None and hourly["last_run_id"] is None


def test_a_job_is_added_shown_as_it_stands_and_listed(client, seeded):
    response = post(client, "/api/schedules", BTC)
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert {k: job[k] for k in BTC} == BTC and job["source"] == "operator"
    assert datetime.fromisoformat(job["next_run_at"]) > datetime.now(UTC)
    assert client.get("/api/schedules/btc-hourly").get_json() == job
    assert "btc-hourly" in {j["name"] for j in client.get("/api/schedules").get_json()["jobs"]}


def test_a_job_without_a_timezone_gets_the_configured_one(client, seeded):
    job = post(client, "/api/schedules", {"name": "eth", "task": "signals", "every": 60}).get_json()
    assert job["timezone"] == "UTC" and job["every"] == 60 and "cron" not in job


def test_a_duplicate_name_is_409(client, seeded):
    assert post(client, "/api/schedules", BTC).status_code == 201
    response = post(client, "/api/schedules", {**BTC, "cron": "9 * * * *"})
    assert response.status_code == 409 and "already exists" in response.get_json()["message"]
    assert client.get("/api/schedules/btc-hourly").get_json()["cron"] == "5 * * * *"


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "BTC_hourly"}, "name"), ({"name": "x" * 200}, "name"), ({"task": "sing"}, "task"),
    ({"scope": {"symbol": "btcusd"}}, "scope.symbol"), ({"scope": {"timeframe": "7q"}}, "scope.timeframe"),
    ({"scope": {"colour": "red"}}, "scope.colour"), ({"cron": "5 * * *"}, "cron"),
    ({"cron": "five * * * *"}, "cron"),
    ({"cron": None, "every": 0}, "every"), ({"cron": None}, "cron"), ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"priority": 11}, "priority"),
    ({"priority": "high"}, "priority"), ({"enabled": 1}, "enabled"), ({"queue": "fast"}, "queue"),
    ({"every": 60}, "every"), ({"last_run_id": "x"}, "last_run_id"),
])
def test_a_bad_job_is_a_400_naming_the_field(client, seeded, change, field):
    body = {k: v for k, v in {**BTC, **change}.items() if v is not None}
    response = post(client, "/api/schedules", body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["parameter"] == field, response.get_json()
    assert client.get("/api/schedules/btc-hourly").status_code == 404


@pytest.mark.parametrize("every", [0, -5, 9])
def test_an_interval_at_or_below_zero_or_under_the_floor_is_refused(client, seeded, every):
    response = post(client, "/api/schedules", {"name": "fast", "task": "all", "every": every})
    assert response.status_code == 400 and response.get_json()["parameter"] == "every"


@pytest.mark.parametrize(("data", "content_type"), [
    ("not json", "application/json"), ("[1, 2]", "application/json"), ('"x"', "application/json"),
    (json.dumps(BTC), "text/plain"), ("", "application/json"), ('{"name": NaN}', "application/json"),
])
def test_a_body_that_is_not_a_json_object_is_a_400_naming_the_body(client, seeded, data, content_type):
    response = client.post("/api/schedules", data=data, content_type=content_type, headers=AUTH)
    assert response.status_code == 400 and response.get_json()["parameter"] == "body", response.get_json()


def test_every_mutation_needs_the_token(client, seeded):
    for method, path in (("POST", "/api/schedules"), ("PATCH", "/api/schedules/prune-daily"),
                         ("DELETE", "/api/schedules/prune-daily"), ("POST", "/api/schedules/prune-daily/run"),
                         ("POST", "/api/schedules/prune-daily/reset")):
        response = client.open(path, method=method, data="{}", content_type="application/json")
        assert response.status_code == 401, (method, path)
    assert client.get("/api/schedules/prune-daily").get_json()["source"] == "default"


def test_a_change_returns_the_job_as_it_now_stands(client, seeded):
    response = patch(client, "pipeline-all-hourly", {"cron": "7 * * * *", "priority": 8,
                                                     "timezone": "Europe/Berlin", "scope": {"timeframe": "1h"}})
    assert response.status_code == 200, response.get_json()
    job = response.get_json()
    assert (job["cron"], job["priority"], job["timezone"], job["scope"], job["source"]) == (
        "7 * * * *", 8, "Europe/Berlin", {"timeframe": "1h"}, "operator")
    assert datetime.fromisoformat(job["next_run_at"]).minute == 7
    assert client.get("/api/schedules/pipeline-all-hourly").get_json() == job


def test_a_disabled_job_has_no_next_run_and_a_reenabled_one_runs_at_its_next_time_from_now(client, seeded):
    assert patch(client, "prune-daily", {"enabled": False}).get_json()["next_run_at"] is None
    job = patch(client, "prune-daily", {"enabled": True}).get_json()
    due = datetime.fromisoformat(job["next_run_at"])
    assert (due.hour, due.minute) == (3, 50) and due > datetime.now(UTC)


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "other"}, "name"), ({"task": "all"}, "task"), ({"cron": "1 * * * *", "every": 60}, "every"),
    ({"every": 3}, "every"), ({"cron": "1 2 3"}, "cron"), ({"enabled": "no"}, "enabled"), ({"wat": 1}, "wat"),
    ({"scope": {"symbol": "BTC-USD"}}, "scope.symbol"),
])
def test_a_bad_change_is_a_400_naming_the_field_and_changes_nothing(client, seeded, change, field):
    before = client.get("/api/schedules/pipeline-all-hourly").get_json()
    response = patch(client, "pipeline-all-hourly", change)
    assert response.status_code == 400 and response.get_json()["parameter"] == field, response.get_json()
    assert client.get("/api/schedules/pipeline-all-hourly").get_json() == before


def test_an_unknown_job_is_404_on_every_route(client, seeded):
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/run"), ("POST", "/reset"),
                         ("GET", "/history")):
        response = client.open(f"/api/schedules/nope{path}", method=method, data="{}",
                               content_type="application/json", headers=AUTH)
        assert response.status_code == 404 and "nope" in response.get_json()["message"], (method, path)


def test_a_deleted_job_is_gone_and_its_answer_is_the_job_as_it_was(client, seeded):
    response = client.delete("/api/schedules/levels-weekly", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["deleted"] is True and response.get_json()["name"] == "levels-weekly"
    assert client.get("/api/schedules/levels-weekly").status_code == 404
    assert "levels-weekly" not in {j["name"] for j in client.get("/api/schedules").get_json()["jobs"]}


def test_running_a_run_job_now_queues_pipeline_start_at_its_priority_and_records_the_run(client, seeded):
    post(client, "/api/schedules", {**BTC, "priority": 8})
    response = client.post("/api/schedules/btc-hourly/run", headers=AUTH)
    assert response.status_code == 202
    body = response.get_json()
    (message,) = queued_messages(seeded, "pipeline")
    assert message["headers"]["task"] == "pipeline.start" and message["headers"]["id"] == body["task_id"]
    assert message["properties"]["priority"] == broker_priority(8)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == ["ohlc", {"symbol": "BTC/USD"}] and kwargs == {"priority": 8}
    assert body["job"]["last_run_id"] == body["task_id"] and body["job"]["last_run_at"] is not None
    # The run is pollable at once, as a trigger's is.
    assert client.get(f"/api/manual-update/?task_id={body['task_id']}").get_json()["status"] == "PENDING"
    again = client.post("/api/schedules/btc-hourly/run", headers=AUTH)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["task_id"] == body["task_id"]


def test_running_a_maintenance_job_now_sends_its_task(client, seeded):
    body = client.post("/api/schedules/prune-ledger-daily/run", headers=AUTH).get_json()
    (message,) = queued_messages(seeded, "ingest")
    assert message["headers"]["task"] == "ingest.prune_ledger" and message["headers"]["id"] == body["task_id"]


def test_reset_returns_a_changed_or_deleted_default_to_the_code_and_refuses_an_operators_job(client, seeded):
    patch(client, "patterns-weekly", {"cron": "0 0 * * *", "priority": 1})
    job = client.post("/api/schedules/patterns-weekly/reset", headers=AUTH).get_json()
    assert (job["cron"], job["priority"], job["source"]) == ("30 4 * * 1", 5, "default")
    client.delete("/api/schedules/levels-weekly", headers=AUTH)
    assert client.post("/api/schedules/levels-weekly/reset", headers=AUTH).get_json()["source"] == "default"
    post(client, "/api/schedules", BTC)
    response = client.post("/api/schedules/btc-hourly/reset", headers=AUTH)
    assert response.status_code == 409 and "no default" in response.get_json()["message"]


def test_the_history_records_who_did_what_before_and_after_newest_first(client, seeded):
    post(client, "/api/schedules", BTC)
    patch(client, "btc-hourly", {"priority": 9})
    client.delete("/api/schedules/btc-hourly", headers=AUTH)
    body = client.get("/api/schedules/btc-hourly/history").get_json()
    assert body["count"] == 3
    delete, change, add = body["changes"]
    assert [c["action"] for c in body["changes"]] == ["delete", "change", "add"]
    assert {c["actor"] for c in body["changes"]} == {"api-token"}
    assert add["before"] is None and add["after"] == BTC
    assert change["before"] == BTC and change["after"] == {**BTC, "priority": 9}
    assert delete["before"] == {**BTC, "priority": 9} and delete["after"] is None
    assert datetime.fromisoformat(add["changed_at"]) <= datetime.fromisoformat(delete["changed_at"])
    assert client.get("/api/schedules/btc-hourly/history?limit=1").get_json()["count"] == 1
    assert client.get("/api/schedules/btc-hourly/history?limit=0").status_code == 400


def test_a_refused_change_leaves_no_history(client, seeded, engine):
    post(client, "/api/schedules", {**BTC, "cron": "bad"})
    patch(client, "prune-daily", {"every": 1})
    assert client.get("/api/schedules/prune-daily/history").get_json()["count"] == 0
    assert client.get("/api/schedules/btc-hourly/history").status_code == 404


# Hostile input: none of it may reach a 500 on any schedule route.
_GARBAGE_BODIES = ["", "{", "null", "[]", "1e999", '{"name": {"$gt": ""}}', '{"name": "a", "task": []}',
                   '{"scope": 5}', '{"scope": {"symbol": 5}}', '{"every": 1e400}', '{"cron": "\\u0000"}',
                   json.dumps({"name": "x" * 5000}), json.dumps({"cron": "* " * 3000}), "[" * 5000 + "]" * 5000,
                   '{"name": "a", "task": "all", "every": 99999999999999999999999}',
                   '{"name": "a", "task": "all", "cron": "0 0 31 2 *"}', '{"timezone": "\\u0000"}']
_GARBAGE_NAMES = ["", "%00", "..%2F..", "x" * 5000, "%FF%FE", "'%3B--", "lock", ":schedule"]


def test_no_garbage_on_any_schedule_route_produces_a_server_error(client, seeded):
    routes = [("POST", "/api/schedules"), ("PATCH", "/api/schedules/{}"), ("DELETE", "/api/schedules/{}"),
              ("POST", "/api/schedules/{}/run"), ("POST", "/api/schedules/{}/reset"), ("GET", "/api/schedules/{}"),
              ("GET", "/api/schedules/{}/history")]
    sent = 0
    for method, path in routes:
        for name in [*_GARBAGE_NAMES, "pipeline-all-hourly"]:
            for body in _GARBAGE_BODIES:
                for query in ("", "?x=1", "?limit=%00"):
                    url = path.format(name) + query
                    response = client.open(url, method=method, data=body, content_type="application/json",
                                           headers=AUTH)
                    assert response.status_code < 500, (method, url, body[:80], response.get_json())
                    sent += 1
    assert sent > 500
