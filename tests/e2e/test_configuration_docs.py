"""Every variable the compose files or the settings read is in .env.example and docs/configuration.md."""

from __future__ import annotations

import re
import subprocess

import pytest

from services.core.config import Settings
from services.exporter.settings import ExporterSettings
from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.prod.yml")
# Built by compose from other variables, or only meaningful outside compose: documented, not in .env.example.
NOT_IN_ENV_EXAMPLE = {"DATABASE_URL", "REDIS_URL", "EXPORTER_BIND"}


def compose_variables() -> set[str]:
    """Variables interpolated by the compose files, and the ones their services pass through by name."""
    names = set()
    for name in COMPOSE_FILES:
        text = (ROOT / name).read_text()
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
        names |= set(re.findall(r"^\s{4}([A-Z][A-Z0-9_]*):\s*$", text, flags=re.MULTILINE))
    return names


def settings_variables() -> set[str]:
    prefixed = {f"EXPORTER_{field.upper()}" for field in ExporterSettings.model_fields}
    prefixed.discard("EXPORTER_REDBEAT_KEY_PREFIX")  # must match the beat's code, not an operator's knob
    return {field.upper() for field in Settings.model_fields} | prefixed


def documented() -> str:
    return (ROOT / "docs" / "configuration.md").read_text()


def in_env_example() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_every_variable_is_documented():
    missing = {name for name in compose_variables() | settings_variables() if f"`{name}`" not in documented()}

    assert not missing, f"not in docs/configuration.md: {sorted(missing)}"


def test_every_variable_is_in_the_example_env_file():
    missing = (compose_variables() | settings_variables()) - in_env_example() - NOT_IN_ENV_EXAMPLE

    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_the_example_env_file_renders_the_stack(docker_engine):
    result = subprocess.run(["docker", "compose", "--project-directory", str(ROOT), "--env-file",
                             str(ROOT / ".env.example"), "--profile", "demo", "config", "--quiet"],
                            cwd=ROOT, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
