"""PromQL in the repository: the metric names an expression selects, and every dashboard and rule expression."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

__all__ = ["metric_names", "exposed_names", "dashboard_expressions", "rule_expressions"]

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MODIFIER = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([^,()]+(?:\{[^}]*\})?)\s*,\s*\w+\s*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")
MONITORING = Path(__file__).resolve().parents[3] / "monitoring"


def metric_names(expression: str) -> set[str]:
    """Names of the series an expression selects: identifiers that are not functions, keywords or labels."""
    text = _LABEL_VALUES.sub(r"\1", expression)  # Grafana's label_values(metric, label): the label is no metric
    text = re.sub(r"label_values\(\s*\w+\s*\)", "", text)
    text = _STRING.sub('""', text)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = _MODIFIER.sub("", text)  # by (...), on (...) and friends name labels
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        if word in _KEYWORDS or text[match.end():].lstrip().startswith("("):
            continue  # a keyword or a function call
        names.add(word)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every series name a scrape in the Prometheus text format can produce, empty families included."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            base = name.removesuffix("_total") if kind == "counter" else name  # newer clients type the _total name
            names |= {
                "counter": {f"{base}_total", f"{base}_created"},
                "histogram": {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"},
                "summary": {name, f"{name}_sum", f"{name}_count", f"{name}_created"},
            }.get(kind, {name})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def prometheus_dashboards() -> list:
    """The dashboards that query Prometheus (the Market dashboard reads Postgres: test_market_dashboard.py)."""
    def reads_postgres(dashboard: dict) -> bool:
        return any((panel.get("datasource") or {}).get("type") == "postgres" for panel in dashboard["panels"])
    return [path for path in sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
            if not reads_postgres(json.loads(path.read_text()))]


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, query) for every panel target and template variable of every Prometheus dashboard."""
    found = []
    for path in prometheus_dashboards():
        dashboard = json.loads(path.read_text())
        panels = [p for panel in dashboard["panels"] for p in (panel, *panel.get("panels", []))]
        found += [(f"{path.stem}: {p['title']}", t["expr"]) for p in panels for t in p.get("targets", [])]
        found += [(f"{path.stem}: ${v['name']}", v["query"]["query"]) for v in dashboard["templating"]["list"]]
    return found


def rule_expressions() -> list[tuple[str, str]]:
    """(where, expression) for every Prometheus rule."""
    found = []
    for path in sorted((MONITORING / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(f"{path.name}: {rule['alert']}", rule["expr"]) for rule in group["rules"]]
    return found
