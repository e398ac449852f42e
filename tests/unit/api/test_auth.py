"""Only a request with the configured bearer token may start a run."""

from __future__ import annotations

import pytest

from services.api.app import create_app
from services.api.auth import check_bearer_token
from services.api.errors import ApiError
from services.core.config import load_settings
from services.core.exceptions import ConfigurationError
from tests.unit.api.conftest import TOKEN


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"Token {TOKEN}", "Bearer wrong-token", f"Bearer {TOKEN}x",
])
def test_a_post_without_the_right_token_is_refused_with_a_bearer_challenge(client, broker, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/api/manual-update/?task=all", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["status"] == "error"
    assert broker.llen("ingest") == 0


def test_the_token_is_checked_before_the_parameters(client):
    # An anonymous caller learns nothing about which task types exist.
    assert client.post("/api/manual-update/?task=nonsense").status_code == 401


def test_the_scheme_is_case_insensitive(client):
    assert client.post("/api/manual-update/?task=all", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 202


def test_an_empty_configured_token_matches_nothing():
    with pytest.raises(ApiError) as caught:
        check_bearer_token("Bearer  ", "")
    assert caught.value.status == 401
    with pytest.raises(ApiError):
        check_bearer_token("Bearer x", "")


def test_production_refuses_to_start_with_the_placeholder_token():
    with pytest.raises(ConfigurationError, match="API_TOKEN"):
        create_app(settings=load_settings(environment="prod", api_token="CHANGE_ME"))
