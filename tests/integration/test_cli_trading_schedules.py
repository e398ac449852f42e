"""`candleflow schedule` with --trading: trading-hours jobs added, changed, listed, and refused with exit 2."""

from __future__ import annotations

import json

import pytest

from tests.utils.schedule_cli import schedule_cli

pytestmark = pytest.mark.integration



@pytest.fixture()
def schedule(engine, database_url, redis_url):
    with schedule_cli(engine, database_url, redis_url) as run:
        yield run


def test_add_and_set_a_trading_job_and_the_list_says_when_it_runs(schedule):
    added = schedule("add", "tw-quotes", "--task", "all", "--trading", "XTAI", "--every", "900", "--json")
    assert added.returncode == 0, added.stderr
    job = json.loads(added.stdout)
    assert (job["trading"], job["timezone"]) == ({"exchange": "XTAI", "every": 900}, "Asia/Taipei")
    changed = json.loads(schedule("set", "tw-quotes", "--trading", "XSHG", "--after-close", "1800", "--json").stdout)
    assert (changed["trading"], changed["timezone"]) == ({"exchange": "XSHG", "after_close": 1800}, "Asia/Shanghai")
    table = schedule("list")
    assert table.returncode == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if line.startswith("tw-quotes")]
    assert "XSHG close +1800s" in row and "Asia/Shanghai" in row


@pytest.mark.parametrize(("args", "words"), [
    (("--trading", "kraken", "--every", "900"), "around the clock"),
    (("--trading", "XQQQ", "--every", "900"), "unknown exchange"),
    (("--trading", "XTAI", "--cron", "*/15 9-13 * * *"), "not cron and trading"),
    (("--after-close", "1800",), "--after-close goes with --trading"),
    (("--trading", "XTAI",), "one of every"),
])
def test_a_bad_trading_job_exits_2_with_the_reason_and_adds_nothing(schedule, args, words):
    refused = schedule("add", "tw-quotes", "--task", "all", *args)
    assert refused.returncode == 2 and words in refused.stderr, refused.stderr
    assert schedule("show", "tw-quotes").returncode == 1


def test_a_job_over_a_venues_own_instruments_names_it_in_its_scope_and_a_fetch_there_exits_2(schedule):
    added = schedule("add", "cn-daily", "--task", "all", "--exchange", "XSHG", "--trading", "XSHG",
                     "--after-close", "1800", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["scope"] == {"exchange": "XSHG"}
    refused = schedule("add", "cn-sync", "--task", "ohlc", "--exchange", "XSHG", "--cron", "5 * * * *")
    assert refused.returncode == 2 and "XSHG is a stock venue, fed by imports" in refused.stderr
