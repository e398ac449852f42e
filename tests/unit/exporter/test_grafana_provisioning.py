"""Grafana provisioning and dashboards, checked statically (Grafana itself does not run in the suite)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.unit.exporter.promql import metric_names, prometheus_dashboards

GRAFANA = Path(__file__).resolve().parents[3] / "monitoring" / "grafana"
# The Prometheus dashboards; the Market dashboard reads Postgres (tests/unit/test_market_dashboard.py).
DASHBOARDS = prometheus_dashboards()
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)")


def provisioned_datasource() -> dict:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    return datasource


def panels_of(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return found


def test_the_datasource_is_prometheus_in_the_compose_stack():
    datasource = provisioned_datasource()
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    assert datasource["uid"] and datasource["isDefault"] is True


def test_the_dashboard_provider_loads_files_into_a_folder():
    config = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "candleflow.yml").read_text())
    (provider,) = config["providers"]
    assert config["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["options"]["path"].startswith("/") and provider["folder"]


def test_there_is_an_overview_and_a_per_instrument_dashboard_with_distinct_uids():
    dashboards = [json.loads(path.read_text()) for path in DASHBOARDS]
    assert {d["uid"] for d in dashboards} == {"candleflow-overview", "candleflow-instrument"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_is_placed_uses_the_provisioned_datasource_and_queries_metrics(path):
    dashboard = json.loads(path.read_text())
    uid = provisioned_datasource()["uid"]
    panels = panels_of(dashboard)
    assert dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            assert metric_names(target["expr"]), f"{panel['title']!r}: {target['expr']!r} selects no metric"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_template_variable_used_is_defined(path):
    dashboard = json.loads(path.read_text())
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    used = set()
    queries = [t["expr"] for p in panels_of(dashboard) for t in p.get("targets", [])]
    queries += [v["query"]["query"] for v in dashboard["templating"]["list"]]
    for query in queries:
        used |= {a or b for a, b in _VARIABLE.findall(query) if not (a or b).startswith("__")}
    assert used <= defined, f"undefined variables: {used - defined}"


def test_the_instrument_dashboard_is_templated_by_symbol_and_timeframe():
    dashboard = json.loads((GRAFANA / "dashboards" / "candleflow-instrument.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"symbol", "timeframe"} <= set(variables)
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            if "candleflow_task_" not in target["expr"]:  # task metrics carry no instrument labels
                assert 'symbol="$symbol"' in target["expr"] and 'timeframe="$timeframe"' in target["expr"]
