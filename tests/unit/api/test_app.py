"""The API process loads no worker code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[3]


def test_the_api_imports_no_worker_code():
    # The API sends tasks by name; importing a worker package would drag in ccxt/pandas work and couple releases.
    probe = ("import sys, services.api.wsgi; "
             "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
             "(['services', 'ingest'], ['services', 'indicators'], ['services', 'signals'])); "
             "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=_REPO, capture_output=True, text=True,
                            env={"ENVIRONMENT": "test", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_timezone_stops_the_api_naming_timezone():
    result = subprocess.run([sys.executable, "-c", "import services.api.wsgi"], cwd=_REPO, capture_output=True,
                            text=True, env={"ENVIRONMENT": "test", "PATH": "/usr/bin:/bin", "TIMEZONE": "Mars/Olympus"},
                            timeout=120)
    assert result.returncode != 0 and "TIMEZONE" in result.stderr, result.stderr[-2000:]
