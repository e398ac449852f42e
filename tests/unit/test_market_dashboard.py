"""The Market dashboard and its Postgres datasource, checked statically: queries, variables, role, wiring."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from services.core.config import Settings
from services.core.reader_role import READER_ROLE, READER_TABLES
from tests.unit.test_configuration import compose_file

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "monitoring" / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "candleflow-market.json").read_text())
DATASOURCES = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "postgres.yml").read_text())
VARIABLES = ("exchange", "symbol", "timeframe")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_]+)", re.IGNORECASE)
# The Grafana macros the e2e expander (tests/e2e/test_market_dashboard.py) knows how to fill in.
KNOWN_MACROS = {"__timeFilter", "__timeFrom", "__timeTo"}


def datasource() -> dict:
    assert DATASOURCES["apiVersion"] == 1
    (found,) = DATASOURCES["datasources"]
    return found


def panels() -> list[dict]:
    return DASHBOARD["panels"]


def every_query() -> list[tuple[str, str]]:
    """(where, SQL) of every panel target, annotation and variable."""
    found = [(f"panel {p['title']!r} {t['refId']}", t["rawSql"]) for p in panels() for t in p["targets"]]
    found += [(f"annotation {a['name']!r}", a["target"]["rawSql"]) for a in DASHBOARD["annotations"]["list"]]
    found += [(f"variable {v['name']}", v["query"]) for v in DASHBOARD["templating"]["list"]]
    return found


def test_the_datasource_is_the_stack_postgres_as_the_reader_role_with_the_password_from_the_environment():
    found = datasource()

    assert found["type"] == "postgres" and found["url"] == "postgres:5432" and found["uid"]
    assert found["user"] == READER_ROLE
    assert found["secureJsonData"]["password"] == "$GRAFANA_DB_PASSWORD"
    assert found["jsonData"]["database"] == "$POSTGRES_DB"
    assert found.get("isDefault") is False  # Prometheus stays the default for the other dashboards


def test_grafana_receives_what_the_datasource_reads_with_the_default_migrate_uses():
    base = compose_file("docker-compose.yml")
    grafana = base["services"]["grafana"]["environment"]
    default = f"${{GRAFANA_DB_PASSWORD:-{Settings.model_fields['grafana_db_password'].default}}}"

    assert grafana["GRAFANA_DB_PASSWORD"] == default
    assert base["x-app"]["environment"]["GRAFANA_DB_PASSWORD"] == default  # what migrate receives
    assert grafana["POSTGRES_DB"] == "${POSTGRES_DB:-candleflow}"
    assert base["services"]["grafana"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_production_requires_and_checks_the_reader_password():
    prod = compose_file("docker-compose.prod.yml")["services"]

    assert "GRAFANA_DB_PASSWORD" in prod["secrets-check"]["command"].split()
    for service in ("secrets-check", "grafana"):
        assert "GRAFANA_DB_PASSWORD must be set for production" in prod[service]["environment"]["GRAFANA_DB_PASSWORD"]


def test_migrate_brings_the_reader_role_up_to_date_after_the_schema():
    script = (ROOT / "compose" / "app" / "start-migrate").read_text().splitlines()
    commands = [line.strip() for line in script if line.strip() and not line.startswith("#")]

    assert commands[-2:] == ["candleflow migrate", "exec python -m services.core.reader_role"]


def test_the_dashboard_is_market_with_a_default_range_and_refresh():
    assert DASHBOARD["uid"] == "candleflow-market" and DASHBOARD["title"] == "Market"
    assert DASHBOARD["time"]["from"].startswith("now-") and DASHBOARD["time"]["to"] == "now"
    assert DASHBOARD["refresh"] and isinstance(DASHBOARD["schemaVersion"], int)


def test_every_panel_is_placed_and_queries_the_postgres_datasource():
    uid = datasource()["uid"]
    assert len({p["id"] for p in panels()}) == len(panels()), "panel ids must be unique"
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["rawQuery"] is True
            assert target["rawSql"].lstrip().upper().startswith("SELECT"), panel["title"]
            assert target["format"] in ("table", "time_series")


def test_the_variables_are_exchange_symbol_timeframe_of_active_instruments_in_that_order():
    variables = DASHBOARD["templating"]["list"]

    assert tuple(v["name"] for v in variables) == VARIABLES
    for variable in variables:
        assert variable["type"] == "query" and variable["datasource"]["uid"] == datasource()["uid"]
        assert re.search(r"\bFROM instruments\b", variable["query"]) and re.search(r"\bWHERE active\b",
                                                                                   variable["query"])
        assert variable["multi"] is False and variable["includeAll"] is False  # one instrument per chart


@pytest.mark.parametrize(("where", "sql"), every_query(), ids=[where for where, _ in every_query()])
def test_every_query_uses_only_defined_variables_known_macros_and_the_readers_tables(where, sql):
    used = {a or b for a, b in _VARIABLE.findall(sql)}
    variables = {name for name in used if not name.startswith("__")}

    assert variables <= set(VARIABLES), f"{where}: undefined variables {variables - set(VARIABLES)}"
    assert used - variables <= KNOWN_MACROS, f"{where}: macros the e2e expander cannot fill {used - variables}"
    assert set(_TABLE.findall(sql)) <= set(READER_TABLES), f"{where}: reads a table the reader role may not"
    # Every variable sits inside quotes: Grafana doubles a single value's quotes, nothing more.
    assert not re.search(r"(?<!')\$\{?(exchange|symbol|timeframe)\b(?!\}?')", sql), where


def test_every_data_query_is_time_bounded_and_scoped_to_the_chosen_instrument():
    data = [(w, sql) for w, sql in every_query() if not w.startswith("variable")]
    for where, sql in data:
        assert "$__timeFilter(" in sql, where
        assert all(f"'${name}'" in sql for name in VARIABLES), where


def test_the_candles_carry_ohlcv_and_the_ema_channel_and_bollinger_overlays():
    (candles,) = [p for p in panels() if p["type"] == "candlestick"]
    sql = candles["targets"][0]["rawSql"]

    assert candles["options"]["fields"] == {name: name for name in ("open", "high", "low", "close", "volume")}
    assert candles["options"]["includeAllFields"] is True  # the overlays are drawn as lines
    for column in ("c.open", "c.high", "c.low", "c.close", "c.volume", "v.channel_high", "v.channel_low",
                   "v.bb_upper", "v.bb_middle", "v.bb_lower"):
        assert column in sql, column


def test_rsi_and_macd_panels_sit_below_the_candles():
    by_title = {p["title"]: p for p in panels()}
    candles_y = next(p for p in panels() if p["type"] == "candlestick")["gridPos"]["y"]

    assert "v.rsi" in by_title["RSI"]["targets"][0]["rawSql"]
    assert all(column in by_title["MACD"]["targets"][0]["rawSql"] for column in ("v.macd", "v.macd_signal",
                                                                                 "v.macd_hist"))
    assert by_title["RSI"]["gridPos"]["y"] > candles_y and by_title["MACD"]["gridPos"]["y"] > candles_y


def test_signals_are_annotations_whose_text_names_side_strategy_and_strength():
    (annotation,) = DASHBOARD["annotations"]["list"]
    sql = annotation["target"]["rawSql"]

    assert annotation["enable"] is True and annotation["datasource"]["uid"] == datasource()["uid"]
    assert "FROM signals" in sql and re.search(r'AS "time"', sql) and " AS text" in sql and " AS tags" in sql
    text = sql[sql.index('AS "time"'):sql.index(" AS text")]
    assert all(column in text for column in ("s.side", "s.strategy", "s.strength"))


def test_the_reader_role_may_read_exactly_the_tables_the_dashboard_reads():
    read = {table for _, sql in every_query() for table in _TABLE.findall(sql)}

    assert read == set(READER_TABLES)
