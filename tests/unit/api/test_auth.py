"""The bearer-token check, which runs before any parameter is read or any server is asked."""

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
    "Bearer \u00e9\u00e9", "Bearer " + "x" * 10_000, "\t",
])
def test_a_post_without_the_right_token_is_a_401_with_a_bearer_challenge(client, authorization):
    # The broker is unreachable here: getting past the check would answer 503, not 401.
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/api/manual-update/?task=all", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["status"] == "error"


def test_a_wrong_token_is_told_apart_from_a_missing_one(client):
    missing = client.post("/api/manual-update/?task=all")
    wrong = client.post("/api/manual-update/?task=all", headers={"Authorization": "Bearer nope"})
    assert missing.get_json()["message"].startswith("missing bearer token")
    assert wrong.get_json()["message"] == "invalid bearer token"
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]


def test_the_token_is_checked_before_the_parameters(client):
    # An anonymous caller learns nothing about which task types or parameters exist.
    assert client.post("/api/manual-update/?task=nonsense").status_code == 401
    assert client.post("/api/manual-update/?symbl=BTC/USD").status_code == 401


def test_with_the_token_a_bad_parameter_is_a_400(client):
    response = client.post("/api/manual-update/?task=nonsense", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400 and response.get_json()["parameter"] == "task"


def test_an_empty_configured_token_matches_nothing():
    with pytest.raises(ApiError) as caught:
        check_bearer_token("Bearer  ", "")
    assert caught.value.status == 401
    with pytest.raises(ApiError):
        check_bearer_token("Bearer x", "")


def test_production_refuses_to_start_with_the_placeholder_token():
    with pytest.raises(ConfigurationError, match="API_TOKEN"):
        create_app(settings=load_settings(environment="prod", api_token="CHANGE_ME"))
