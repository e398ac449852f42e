"""create_app wiring: configured defaults, and no worker code in the API process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.api.app import create_app
from tests.unit.api.conftest import TOKEN

_REPO = Path(__file__).resolve().parents[3]


def test_without_arguments_the_app_uses_the_configured_settings(api_settings, engine):
    client = create_app().test_client()
    assert client.get("/api/instruments").get_json() == {"count": 0, "instruments": []}

    def trigger_with(token: str) -> int:
        return client.post("/api/manual-update/?task=nope", headers={"Authorization": f"Bearer {token}"}).status_code

    # The token comes from API_TOKEN, not the placeholder default; the right one gets as far as validation.
    assert trigger_with("CHANGE_ME") == 401
    assert trigger_with(TOKEN) == 400


def test_the_api_imports_no_worker_code():
    # The API sends tasks by name; importing a worker package would drag in ccxt/pandas work and couple releases.
    probe = ("import sys, services.api.wsgi; "
             "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
             "(['services', 'ingest'], ['services', 'indicators'], ['services', 'signals'])); "
             "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=_REPO, capture_output=True, text=True,
                            env={"ENVIRONMENT": "test", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
