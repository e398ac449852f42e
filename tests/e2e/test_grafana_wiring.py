"""Grafana's image cannot be had here (docs/adr/0002), so its wiring into the stack is checked statically."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import ROOT

try:
    import yaml
except ImportError as exc:  # a missing test dependency must fail loudly, never skip
    raise ImportError("tests/e2e needs PyYAML (pyproject's test extra)") from exc

pytestmark = pytest.mark.e2e

GRAFANA = ROOT / "monitoring" / "grafana"


@pytest.fixture(scope="module")
def compose_model(docker_engine) -> dict:
    """docker-compose.yml as compose resolves it, with the grafana profile on."""
    result = subprocess.run(["docker", "compose", "--project-directory", str(ROOT), "--env-file", "/dev/null",
                             "--profile", "grafana", "config", "--format", "json"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def _mounts(service: dict) -> dict[str, dict]:
    """Container path → volume entry, for bind mounts of the service."""
    return {v["target"]: v for v in service.get("volumes", []) if v["type"] == "bind"}


def _provisioning(kind: str) -> list[dict]:
    files = sorted((GRAFANA / "provisioning" / kind).glob("*.y*ml"))
    assert files, f"no provisioning files in monitoring/grafana/provisioning/{kind}"
    return [yaml.safe_load(path.read_text()) for path in files]


def test_provisioning_and_dashboards_are_mounted_read_only(compose_model):
    mounts = _mounts(compose_model["services"]["grafana"])

    for source, target in ((GRAFANA / "provisioning", "/etc/grafana/provisioning"),
                           (GRAFANA / "dashboards", "/var/lib/grafana/dashboards")):
        assert target in mounts, f"{target} not mounted into grafana"
        assert Path(mounts[target]["source"]) == source and mounts[target].get("read_only") is True


def test_the_datasource_points_at_the_prometheus_service(compose_model):
    datasources = [ds for doc in _provisioning("datasources") for ds in doc["datasources"]]
    prometheus = compose_model["services"]["prometheus"]

    urls = [urlsplit(ds["url"]) for ds in datasources if ds["type"] == "prometheus"]
    assert urls, datasources
    for url in urls:
        assert url.hostname == "prometheus" and url.port == 9090, url.geturl()
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_the_dashboard_provider_reads_the_mounted_folder(compose_model):
    providers = [p for doc in _provisioning("dashboards") for p in doc["providers"]]
    mounted = set(_mounts(compose_model["services"]["grafana"]))

    assert providers
    assert all(p["options"]["path"] in mounted for p in providers), providers


def test_every_dashboard_is_json_using_a_provisioned_datasource():
    known = {ds["uid"] for doc in _provisioning("datasources") for ds in doc["datasources"]}
    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))

    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard.get("uid") and dashboard.get("panels"), path.name
        used = {ref["uid"] for ref in _datasource_refs(dashboard)}
        assert used <= known, f"{path.name} uses datasource uids {used - known} that nothing provisions"


def _datasource_refs(node: object):
    if isinstance(node, dict):
        ref = node.get("datasource")
        if isinstance(ref, dict) and "uid" in ref:
            yield ref
        for value in node.values():
            yield from _datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasource_refs(value)
