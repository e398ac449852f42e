"""Against a real Redis: only a request with the configured bearer token queues a run."""

from __future__ import annotations

import pytest

from services.api.app import create_app
from tests.integration.api.conftest import AUTH, TOKEN
from tests.utils.broker import queued

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"Token {TOKEN}", "Bearer wrong-token", f"Bearer {TOKEN}x",
])
def test_a_post_without_the_right_token_is_refused_and_queues_nothing(client, broker, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/api/manual-update/?task=all", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["status"] == "error"
    assert queued(broker, "pipeline") == 0


def test_the_right_token_queues_the_run(client, broker):
    assert client.post("/api/manual-update/?task=all", headers=AUTH).status_code == 202
    assert queued(broker, "pipeline") == 1


def test_the_scheme_is_case_insensitive(client):
    assert client.post("/api/manual-update/?task=all", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 202


READER = "reader-token-4f0a9b2c7d1e"
READS = ["/api/instruments", "/api/candles?symbol=BTC/USD", "/api/signals", "/api/runs",
         "/api/manual-update/?task_id=nope"]


@pytest.fixture()
def closed_reads(api_settings, celery, broker, engine):
    """The API as production runs it: API_READ_ACCESS=token, with a read-only token."""
    settings = api_settings.model_copy(update={"api_read_access": "token", "api_read_token": READER})
    return create_app(settings=settings, celery=celery, redis_client=broker, engine=engine).test_client()


@pytest.mark.parametrize("path", READS)
def test_closed_reads_refuse_an_anonymous_reader_and_serve_either_token(closed_reads, path):
    anonymous = closed_reads.get(path)
    assert anonymous.status_code == 401 and anonymous.get_json()["status"] == "error"
    for token in (TOKEN, READER):
        assert closed_reads.get(path, headers={"Authorization": f"Bearer {token}"}).status_code != 401, token


def test_the_read_token_changes_nothing(closed_reads, broker):
    response = closed_reads.post("/api/manual-update/?task=all", headers={"Authorization": f"Bearer {READER}"})
    assert response.status_code == 401
    assert queued(broker, "pipeline") == 0


@pytest.mark.parametrize("path", ["/api/health/live", "/api/health", "/metrics", "/api/openapi.json"])
def test_probes_metrics_and_the_document_stay_open_with_closed_reads(closed_reads, path):
    assert closed_reads.get(path).status_code in (200, 503)


def test_open_reads_need_no_token(client):
    assert client.get("/api/runs").status_code == 200
