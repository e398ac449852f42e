"""`candleflow schedule …` as an operator runs it, against real Redis and Postgres."""

from __future__ import annotations

import json

import pytest

from services.core.pipeline.job_plan import DEFAULT_JOBS
from tests.utils.schedule_cli import schedule_cli

pytestmark = pytest.mark.integration



@pytest.fixture()
def schedule(engine, database_url, redis_url):
    with schedule_cli(engine, database_url, redis_url) as run:
        yield run


def test_list_prints_a_table_and_json_for_scripts(schedule):
    table = schedule("list")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "TASK", "SCOPE"] and len(rows) == len(DEFAULT_JOBS)
    assert any(row.startswith("pipeline-all-hourly") and "5 * * * *" in row for row in rows)
    jobs = json.loads(schedule("list", "--json").stdout)
    assert {job["name"] for job in jobs} == set(DEFAULT_JOBS)


def test_set_enable_disable_show_and_history_change_a_job_as_cli(schedule):
    changed = json.loads(schedule("set", "pipeline-all-hourly", "--cron", "9 * * * *", "--priority", "7",
                                  "--json").stdout)
    assert (changed["cron"], changed["priority"], changed["source"]) == ("9 * * * *", 7, "operator")
    assert json.loads(schedule("set", "pipeline-all-hourly", "--every", "600", "--json").stdout)["every"] == 600
    assert json.loads(schedule("disable", "pipeline-all-hourly", "--json").stdout)["enabled"] is False
    shown = schedule("show", "pipeline-all-hourly")
    assert shown.returncode == 0 and "every 600s" in shown.stdout and " no " in shown.stdout
    assert json.loads(schedule("enable", "pipeline-all-hourly", "--json").stdout)["next_run_at"] is not None
    history = json.loads(schedule("history", "pipeline-all-hourly", "--json").stdout)
    assert [c["action"] for c in history] == ["change"] * 4 and {c["actor"] for c in history} == {"cli"}


def test_add_run_reset_and_delete(schedule):
    added = schedule("add", "btc-hourly", "--task", "ohlc", "--symbol", "BTC/USD", "--cron", "5 * * * *", "--json")
    assert added.returncode == 0 and json.loads(added.stdout)["scope"] == {"symbol": "BTC/USD"}
    ran = json.loads(schedule("run", "btc-hourly", "--json").stdout)
    assert ran["duplicate"] is False and ran["job"]["last_run_id"] == ran["task_id"]
    schedule("set", "levels-weekly", "--cron", "0 0 * * *")
    assert json.loads(schedule("reset", "levels-weekly", "--json").stdout)["cron"] == "40 4 * * 1"
    assert schedule("delete", "btc-hourly").returncode == 0
    assert schedule("show", "btc-hourly").returncode == 1


@pytest.mark.parametrize(("args", "says"), [
    (("show", "nope"), "no schedule job 'nope'"), (("set", "prune-daily", "--cron", "5 * *"), "5 fields"),
    (("set", "prune-daily", "--every", "3"), "every must be from 10"),
    (("set", "prune-daily", "--timezone", "Mars/Olympus"), "unknown timezone"),
    (("set", "prune-daily"), "nothing to change"),
    (("add", "prune-daily", "--task", "prune-runs", "--cron", "1 * * * *"), "already exists"),
    (("add", "x", "--task", "sing", "--every", "60"), "unknown task"),
    (("reset", "nope"), "no schedule job"),
])
def test_errors_exit_non_zero_with_the_message(schedule, args, says):
    result = schedule(*args)
    assert result.returncode != 0 and says in result.stderr, result.stderr
