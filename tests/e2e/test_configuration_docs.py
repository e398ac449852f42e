"""The example env file renders the compose stack (docker compose config); the file-only checks are in tests/unit."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e


def test_the_example_env_file_renders_the_stack(docker_engine):
    result = subprocess.run(["docker", "compose", "--project-directory", str(ROOT), "--env-file",
                             str(ROOT / ".env.example"), "--profile", "demo", "config", "--quiet"],
                            cwd=ROOT, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
