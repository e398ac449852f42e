"""create_app without arguments reads its collaborators from the configured settings."""

from __future__ import annotations

import pytest

from services.api.app import create_app
from tests.integration.api.conftest import TOKEN

pytestmark = pytest.mark.integration


def test_without_arguments_the_app_uses_the_configured_settings(api_settings, engine):
    client = create_app().test_client()
    assert client.get("/api/instruments").get_json() == {"count": 0, "instruments": []}

    def trigger_with(token: str) -> int:
        return client.post("/api/manual-update/?task=nope", headers={"Authorization": f"Bearer {token}"}).status_code

    # The token comes from API_TOKEN, not the placeholder default; the right one gets as far as validation.
    assert trigger_with("CHANGE_ME") == 401
    assert trigger_with(TOKEN) == 400
