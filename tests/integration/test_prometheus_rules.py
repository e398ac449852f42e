"""Prometheus config and alert rules, checked and unit-tested by promtool (Debian package `prometheus`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

PROMETHEUS = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "rules" / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: `apt-get install -y prometheus` (make test installs it)", pytrace=False)
    return binary


def run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


def alert_names(path: Path) -> set[str]:
    return {rule["alert"] for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
            if "alert" in rule}


def test_the_prometheus_config_is_valid_and_loads_every_rule_file(promtool):
    result = run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_the_config_scrapes_every_service_that_exposes_metrics():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    # Static targets as host:port; DNS-discovered ones (every container of a scaled service) as name:port.
    targets = {job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
               + [f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]]
               for job in config["scrape_configs"]}
    assert targets["exporter"] == ["exporter:9808"] and targets["api"] == ["api:8000"]
    assert sorted(targets["workers"]) == ["worker-indicators:9809", "worker-ingest:9809", "worker-signals:9809"]
    assert "prometheus" in targets and config["rule_files"] == ["rules/*.yml"]


def test_the_rules_pass_promtools_checks(promtool):
    result = run(promtool, "check", "rules", *(str(p.relative_to(PROMETHEUS)) for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass(promtool):
    result = run(promtool, "test", "rules", *(str(p.relative_to(PROMETHEUS)) for p in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_stays_quiet():
    firing, quiet = set(), set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set().union(*(alert_names(p) for p in RULE_FILES))
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"


def test_every_rule_has_a_severity_and_a_runbook_section_in_the_docs():
    docs = (PROMETHEUS.parents[1] / "docs" / "monitoring.md").read_text().lower()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
                anchor = rule["annotations"]["runbook"].split("#", 1)[1]
                assert f"### {rule['alert'].lower()}" in docs, f"docs/monitoring.md has no section for {anchor}"
