"""The Postgres connection budget: pool settings reach every engine; docs/scaling.md's table is the formula's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.core import config, db
from services.core.db import connection_budget

ROOT = Path(__file__).resolve().parents[3]


def _budget_rows() -> list[list[str]]:
    """The cells of each row of the table under docs/scaling.md's "Connection budget" heading."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    section = text.split("\n## Connection budget\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]  # past header and rule


def test_the_budget_is_hosts_times_processes_times_pool_plus_overflow():
    assert connection_budget(4, 6, 5, 5) == 240
    assert connection_budget(1, 2, 1, 0) == 2
    assert connection_budget(0, 6, 5, 5) == 0


@pytest.mark.parametrize("bad", ["hosts", "processes_per_host", "pool_size", "max_overflow"])
def test_a_negative_figure_is_refused_naming_it(bad):
    figures = {"hosts": 1, "processes_per_host": 1, "pool_size": 1, "max_overflow": 1, bad: -1}
    with pytest.raises(ValueError, match=bad):
        connection_budget(**figures)


def test_every_row_of_the_documented_budget_is_what_the_formula_gives():
    rows = _budget_rows()
    assert len(rows) >= 3, "the table lists the deployments"
    for row in rows:
        hosts, processes, pool, overflow, connections = (int(re.sub(r"\D", "", cell)) for cell in row[1:6])
        assert connection_budget(hosts, processes, pool, overflow) == connections, row


def test_the_pool_settings_reach_the_engine(monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "3")
    monkeypatch.setattr(db, "_ENGINES", {})
    config.get_settings.cache_clear()
    try:
        engine = db.engine_for("postgresql+psycopg2://nobody@127.0.0.1:1/none")  # creating one connects nowhere
        assert (engine.pool.size(), engine.pool._max_overflow) == (2, 3)
    finally:
        config.get_settings.cache_clear()


def test_the_pool_settings_default_to_five_and_five_and_refuse_an_empty_pool():
    assert (config.Settings().db_pool_size, config.Settings().db_max_overflow) == (5, 5)
    with pytest.raises(config.ConfigurationError, match="DB_POOL_SIZE"):
        config.load_settings(db_pool_size=0)
