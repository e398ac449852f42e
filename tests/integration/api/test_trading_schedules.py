"""Over HTTP against real Redis and Postgres: trading-hours jobs added, refused, changed and shown with next_run_at."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.core.pipeline.job_plan import seed_jobs
from services.core.pipeline.schedules import reconcile_schedule
from services.core.sessions import venue_sessions
from tests.integration.api.conftest import AUTH

pytestmark = pytest.mark.integration

TW = {"name": "tw-quotes", "task": "all", "trading": {"exchange": "XTAI", "every": 900}}


@pytest.fixture()
def seeded(broker, engine, api_settings):
    reconcile_schedule(broker, engine, seed_jobs({}, "UTC"), "UTC")
    return broker


def post(client, body):
    return client.post("/api/schedules", data=json.dumps(body), content_type="application/json", headers=AUTH)


def patch(client, name, body):
    return client.patch(f"/api/schedules/{name}", data=json.dumps(body), content_type="application/json",
                        headers=AUTH)


def inside_a_session(exchange: str, instant: datetime) -> bool:
    sessions = venue_sessions(exchange)
    at = instant.timestamp()
    return any(start <= at <= end for start, end in zip(sessions.starts, sessions.ends, strict=True))


def test_a_trading_job_is_added_on_its_venues_clock_and_next_runs_inside_a_session(client, seeded):
    response = post(client, TW)
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert job["trading"] == TW["trading"] and job["timezone"] == "Asia/Taipei" and "cron" not in job
    due = datetime.fromisoformat(job["next_run_at"])
    assert due > datetime.now(UTC) and inside_a_session("XTAI", due)
    local = due.astimezone(ZoneInfo("Asia/Taipei"))
    assert (local.minute % 15, local.weekday() < 5) == (0, True)
    listed = {j["name"]: j for j in client.get("/api/schedules").get_json()["jobs"]}
    assert listed["tw-quotes"] == job


@pytest.mark.parametrize(("trading", "field"), [
    ({"exchange": "XQQQ", "every": 900}, "trading.exchange"),
    ({"exchange": "kraken", "every": 900}, "trading.exchange"),
    ({"exchange": "XTAI", "every": 5}, "trading.every"),
    ({"exchange": "XTAI", "every": 900, "after_close": 60}, "trading.after_close"),
    ({"exchange": "XTAI"}, "trading.every"),
    ({"exchange": "XTAI", "every": 900, "lunch": True}, "trading.lunch"),
    ([], "trading"),
])
def test_a_bad_trading_field_is_a_400_naming_it_and_adds_nothing(client, seeded, trading, field):
    response = post(client, {**TW, "trading": trading})
    assert response.status_code == 400 and response.get_json()["parameter"] == field, response.get_json()
    assert client.get("/api/schedules/tw-quotes").status_code == 404


def test_a_trading_job_beside_a_cron_or_with_another_zone_is_refused(client, seeded):
    both = post(client, {**TW, "cron": "*/15 9-13 * * mon-fri"})
    assert both.status_code == 400 and both.get_json()["parameter"] == "trading"
    zone = post(client, {**TW, "timezone": "UTC"})
    assert zone.status_code == 400 and zone.get_json()["parameter"] == "timezone"
    assert "Asia/Taipei" in zone.get_json()["message"]


def test_patch_moves_a_cron_job_onto_sessions_and_back(client, seeded):
    response = patch(client, "pipeline-all-hourly", {"trading": {"exchange": "XSHG", "after_close": 1800}})
    assert response.status_code == 200, response.get_json()
    job = response.get_json()
    assert "cron" not in job and job["trading"] == {"exchange": "XSHG", "after_close": 1800}
    assert job["timezone"] == "Asia/Shanghai"
    due = datetime.fromisoformat(job["next_run_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert (due.hour, due.minute) == (15, 30)  # XSHG closes at 15:00
    back = patch(client, "pipeline-all-hourly", {"cron": "5 * * * *"}).get_json()
    assert "trading" not in back and back["timezone"] == "UTC"
    history = client.get("/api/schedules/pipeline-all-hourly/history").get_json()["changes"]
    assert history[1]["after"]["trading"] == {"exchange": "XSHG", "after_close": 1800}
