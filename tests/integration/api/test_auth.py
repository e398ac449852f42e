"""Against a real Redis: only a request with the configured bearer token queues a run."""

from __future__ import annotations

import pytest

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
