"""Every SQL query of the Market dashboard, run on the stack's Postgres as the read-only role Grafana uses."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from services.core.config import Settings
from services.core.reader_role import READER_ROLE
from tests.e2e.stack import ROOT, ComposeStack
from tests.e2e.test_stack import run_all

pytestmark = pytest.mark.e2e

DASHBOARD = json.loads((ROOT / "monitoring" / "grafana" / "dashboards" / "candleflow-market.json").read_text())
# What an operator picks in the variables: an instrument the demo stack ingests (SYMBOLS in conftest).
CHOSEN = {"exchange": "binance", "symbol": "BTC/USD", "timeframe": "1h"}
# The stack leaves GRAFANA_DB_PASSWORD unset, so migrate and Grafana share the development default.
READER_PASSWORD = Settings.model_fields["grafana_db_password"].default

_RELATIVE = re.compile(r"^now(?:-(\d+)([mhdw]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def instant(expression: str, now: datetime) -> datetime:
    """A Grafana time-picker bound of the forms this dashboard uses: `now` or `now-<n><m|h|d|w>`."""
    match = _RELATIVE.match(expression)
    assert match, f"time bound {expression!r} is not one the expander knows"
    amount, unit = match.groups()
    return now - timedelta(**{_UNITS[unit]: int(amount)}) if amount else now


def expand(sql: str, variables: dict[str, str], start: datetime, end: datetime) -> str:
    """The query as Grafana's Postgres datasource sends it, for the macros and variables used here.

    `$__timeFilter(col)` becomes `col BETWEEN '<from>' AND '<to>'` and `$__timeFrom()` /
    `$__timeTo()` the quoted bounds (RFC 3339, UTC), as Grafana writes them; `$name` and
    `${name}` become the variable's value with `'` doubled, Grafana's escaping of a
    single-value variable inside the quotes the query supplies. Any other `$__` macro (say
    `$__interval`, which Grafana would also fill in) fails the test instead of being guessed at.
    """
    bound = {name: "'" + at.isoformat().replace("+00:00", "Z") + "'" for name, at in (("from", start), ("to", end))}
    sql = _TIME_FILTER.sub(lambda m: f"{m.group(1)} BETWEEN {bound['from']} AND {bound['to']}", sql)
    sql = sql.replace("$__timeFrom()", bound["from"]).replace("$__timeTo()", bound["to"])

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert not name.startswith("__"), f"macro ${name} is not one the expander knows"
        assert name in variables, f"variable ${name} has no value"
        return variables[name].replace("'", "''")

    return _VARIABLE.sub(value, sql)


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, SQL) of every panel target and annotation; the variables' queries are tested in order apart."""
    found = [(f"panel {panel['title']!r} {target['refId']}", target["rawSql"])
             for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]
    found += [(f"annotation {a['name']!r}", a["target"]["rawSql"]) for a in DASHBOARD["annotations"]["list"]]
    return found


@pytest.fixture(scope="module")
def reader(stack: ComposeStack):
    """A session as candleflow_reader (password login over the published port), after a run has stored data."""
    run = run_all(stack)
    assert run["status"] == "SUCCESS", run
    conn = psycopg2.connect(host="127.0.0.1", port=int(stack.env["POSTGRES_PORT"]), dbname="candleflow",
                            user=READER_ROLE, password=READER_PASSWORD, connect_timeout=10)
    conn.autocommit = True
    yield conn
    conn.close()


def rows(conn, sql: str) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def time_range() -> tuple[datetime, datetime]:
    """The dashboard's default range, as it opens."""
    now = datetime.now(UTC)
    return instant(DASHBOARD["time"]["from"], now), instant(DASHBOARD["time"]["to"], now)


def test_each_variable_offers_the_ingested_instrument_given_the_ones_before(reader):
    chosen: dict[str, str] = {}
    for variable in DASHBOARD["templating"]["list"]:
        offered = [row[0] for row in rows(reader, expand(variable["query"], chosen, *time_range()))]
        assert CHOSEN[variable["name"]] in offered, (variable["name"], offered)
        chosen[variable["name"]] = CHOSEN[variable["name"]]
    assert chosen == CHOSEN


@pytest.mark.parametrize(("where", "sql"), dashboard_queries(), ids=[where for where, _ in dashboard_queries()])
def test_every_query_returns_rows_with_every_column_filled_somewhere(reader, where, sql):
    with reader.cursor() as cursor:
        cursor.execute(expand(sql, CHOSEN, *time_range()))
        columns = [column.name for column in cursor.description]
        found = cursor.fetchall()

    assert found, f"{where}: no rows in the default range"
    empty = [name for k, name in enumerate(columns) if all(row[k] is None for row in found)]
    assert not empty, f"{where}: columns {empty} are null in every row"


def test_the_signal_annotations_carry_side_strategy_and_strength(reader):
    (annotation,) = DASHBOARD["annotations"]["list"]
    texts = [row[1] for row in rows(reader, expand(annotation["target"]["rawSql"], CHOSEN, *time_range()))]

    assert texts and all(re.fullmatch(r"(buy|sell) \S+ \(strength -?\d+(\.\d+)?\)", text) for text in texts), texts[:5]


def test_the_dashboard_role_cannot_change_the_stack_database(reader):
    for statement in ("DELETE FROM signals", "UPDATE instruments SET active = false",
                      "CREATE TABLE scratch (id int)", "SELECT count(*) FROM pipeline_runs"):
        with pytest.raises(psycopg2.Error) as refused:
            rows(reader, statement)
        assert refused.value.pgcode in ("42501", "25006"), (statement, refused.value)
    assert rows(reader, "SELECT count(*) FROM signals")[0][0] > 0  # nothing was deleted


def test_migrate_run_again_on_the_existing_volume_keeps_the_role_working(stack, reader):
    stack.compose("run", "--rm", "--no-deps", "migrate", timeout=300)

    conn = psycopg2.connect(host="127.0.0.1", port=int(stack.env["POSTGRES_PORT"]), dbname="candleflow",
                            user=READER_ROLE, password=READER_PASSWORD, connect_timeout=10)
    try:
        assert rows(conn, "SELECT count(*) FROM candles")[0][0] > 0
    finally:
        conn.close()
