"""The production delta: it refuses to render without its secrets, and with them locks the stack down."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e

SECRETS = {
    "API_TOKEN": "0123abcd" * 4,
    "POSTGRES_PASSWORD": "pg-secret-3b8e61f0",
    "REDIS_PASSWORD": "redis-secret-0c47d9e2",
    "FLOWER_USER": "operator",
    "FLOWER_PASSWORD": "flower-secret-95a2c7d1",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret-6e0f3b4a",
    "GRAFANA_DB_PASSWORD": "grafana-reader-secret-2d9c51e7",
}


def render(secrets: dict[str, str], tmp_path, *extra: str) -> subprocess.CompletedProcess:
    """`docker compose -f docker-compose.yml -f docker-compose.prod.yml config` with only `secrets` set."""
    env_file = tmp_path / "prod.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in secrets.items()))
    env = {key: value for key, value in os.environ.items() if key not in SECRETS}
    return subprocess.run(
        ["docker", "compose", "--project-directory", str(ROOT), "--env-file", str(env_file),
         "-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.prod.yml"),
         "--profile", "demo", "--profile", "grafana", "config", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_the_production_config_naming_it(docker_engine, tmp_path, missing):
    result = render({k: v for k, v in SECRETS.items() if k != missing}, tmp_path)

    assert result.returncode != 0
    assert f"{missing} must be set for production" in result.stderr, result.stderr


def test_with_every_secret_the_production_stack_is_locked_down(docker_engine, tmp_path):
    result = render(SECRETS, tmp_path, "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]

    assert "exchange-sim" not in services  # even with --profile demo
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api", "flower", "grafana"}, published
    assert services["flower"]["environment"]["FLOWER_READ_ONLY"] == "true"
    for name in ("migrate", "flower", "grafana"):
        assert services[name]["depends_on"]["secrets-check"]["condition"] == "service_completed_successfully"
    assert services["secrets-check"]["command"][:2] == ["candleflow", "check-secrets"]
    assert "--requirepass" in services["redis"]["command"]
    for name in ("api", "worker-ingest", "worker-indicators", "worker-signals", "beat", "exporter", "migrate"):
        environment = services[name]["environment"]
        assert environment["ENVIRONMENT"] == "prod", name
        assert environment["REDIS_URL"] == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0", name
        assert environment["EXCHANGE_API_URL"] == "", name  # the real exchange, not the simulator
        assert services[name]["deploy"]["resources"]["limits"]["memory"], name
    for name, service in services.items():
        expected = "no" if name in ("migrate", "secrets-check") else "unless-stopped"
        assert service.get("restart") == expected, name
    assert services["api"]["environment"]["API_TOKEN"] == SECRETS["API_TOKEN"]
