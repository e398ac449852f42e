"""The `candleflow` console script as an operator runs it, against the simulator and real servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from services.exchange_sim.server import running_simulator

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "candleflow")


@pytest.fixture()
def run_cli(engine, database_url, redis_url):
    with running_simulator(symbols=["BTC/USD", "ETH/USD"], now="2024-03-01T00:30:00Z") as (url, _):
        base = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "EXCHANGE": "binance",
                "EXCHANGE_API_URL": url, "SYMBOLS": "BTC/USD,ETH/USD", "TIMEFRAMES": "1h",
                "SYNC_LOOKBACK_BARS": "24", "EXCHANGE_CLOCK_RECHECK_S": "0", "FETCH_RETRIES": "1",
                "BACKOFF_BASE_S": "0.01"}

        def run(*args: str, **env: str) -> subprocess.CompletedProcess:
            return subprocess.run([CLI, *args], env={**base, **env}, capture_output=True, text=True, timeout=120)
        yield run


def test_migrate_brings_the_schema_to_head(run_cli):
    result = run_cli("migrate")
    assert result.returncode == 0 and "database at head" in result.stdout


def test_migrate_accepts_the_bare_postgresql_url_hosting_services_hand_out(run_cli, database_url):
    bare = database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    result = run_cli("migrate", DATABASE_URL=bare)
    assert result.returncode == 0, result.stderr
    assert "database at head" in result.stdout


def test_backfill_reports_what_it_stored_with_a_progress_bar(run_cli, engine):
    assert run_cli("migrate").returncode == 0  # seeds the universe from SYMBOLS
    result = run_cli("backfill", "BTC/USD", "--timeframe", "1h", "--since", "2024-02-01", "--until", "2024-02-03")
    assert result.returncode == 0, result.stderr
    assert "BTC/USD 1h: 48 candles in 1 windows, 0 rejected, 0 missing" in result.stdout
    assert "window" in result.stderr and "100%" in result.stderr  # tqdm draws on stderr


def test_sync_updates_every_active_instrument(run_cli, engine):
    assert run_cli("migrate").returncode == 0
    retired = run_cli("instruments", "set", "ETH/USD", "--active", "false")
    assert retired.returncode == 0, retired.stderr
    result = run_cli("sync")
    assert result.returncode == 0, result.stderr
    assert "BTC/USD 1h: 25 candles" in result.stdout and "ETH/USD" not in result.stdout


def test_a_symbol_outside_the_universe_is_refused_with_exit_2_and_how_to_add_it(run_cli, engine):
    result = run_cli("backfill", "SOL/USD", "--since", "2024-02-01", "--quiet")
    assert result.returncode == 2
    assert "SOL/USD on binance is not in the universe" in result.stderr and "add=true" in result.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM instruments")).scalar_one() == 0  # nothing half-registered


def test_adding_a_symbol_the_exchange_does_not_list_fails_with_exit_2_and_says_why(run_cli):
    assert run_cli("backfill", "DOGE/USD", "--since", "2024-02-01", "--add", "--quiet").returncode == 2  # not synced
    synced = run_cli("markets", "sync")
    assert synced.returncode == 0 and "binance: 2 markets, 2 new" in synced.stdout, synced.stdout + synced.stderr
    result = run_cli("backfill", "DOGE/USD", "--since", "2024-02-01", "--add", "--quiet")
    assert result.returncode == 2
    assert "binance does not list DOGE/USD" in result.stderr


def test_the_universe_from_a_shell_add_list_retire_and_markets(run_cli):
    import json

    assert run_cli("markets", "sync").returncode == 0
    added = run_cli("instruments", "add", "ETH/USD", "--timeframes", "4h,1h", "--json")
    assert added.returncode == 0, added.stderr
    assert [(row["symbol"], row["timeframes"], row["source"]) for row in json.loads(added.stdout)] == [
        ("ETH/USD", ["1h", "4h"], "cli")]
    again = run_cli("instruments", "add", "ETH/USD")
    assert again.returncode == 2 and "already in the universe" in again.stderr
    assert run_cli("instruments", "set", "ETH/USD", "--active", "false").returncode == 0
    listing = run_cli("instruments", "list", "--active", "false")
    assert listing.returncode == 0 and "ETH/USD" in listing.stdout and "cli" in listing.stdout
    assert run_cli("instruments", "list", "--active", "true", "--json").stdout.strip() == "[]"
    markets = json.loads(run_cli("markets", "list", "--json").stdout)
    assert [(m["symbol"], m["base"], m["quote"], m["type"]) for m in markets] == [
        ("BTC/USD", "BTC", "USD", "spot"), ("ETH/USD", "ETH", "USD", "spot")]
    missing = run_cli("instruments", "set", "SOL/USD", "--active", "true")
    assert missing.returncode == 1 and "no instrument SOL/USD" in missing.stderr


def test_a_malformed_variable_stops_the_command_naming_it(run_cli):
    result = run_cli("sync", SYMBOLS="btcusd")
    assert result.returncode == 2
    assert "SYMBOLS" in result.stderr and "BASE/QUOTE" in result.stderr


@pytest.fixture()
def run_local(database_url, redis_url, tmp_path):
    """`candleflow run-local` on a scratch Procfile in an empty directory (no .env), with a 60 s cap."""
    def run(procfile: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        (tmp_path / "Procfile").write_text(procfile)
        base = {key: value for key, value in os.environ.items() if key not in ("EXCHANGE", "EXCHANGE_API_URL")}
        return subprocess.run([CLI, "run-local", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              env={**base, "DATABASE_URL": database_url, "REDIS_URL": redis_url, **env})
    return run


def test_run_local_prefixes_each_line_and_stops_everything_with_the_first_exit_code(run_local):
    started = time.monotonic()
    result = run_local("talker: echo hello from talker; sleep 50\n"
                       "quitter: sleep 1; exit 3\n"
                       "sleeper: trap 'echo caught TERM; exit 0' TERM; while :; do sleep 0.1; done\n")
    assert result.returncode == 3, result.stdout + result.stderr
    assert re.search(r"^\d\d:\d\d:\d\d talker +\| hello from talker$", result.stdout, re.M), result.stdout
    assert re.search(r"^\d\d:\d\d:\d\d sleeper +\| caught TERM$", result.stdout, re.M), result.stdout
    assert time.monotonic() - started < 30  # talker's sleep 50 was cut short


@pytest.fixture()
def empty_database_url(engine, database_url):
    """A database created empty on the suite's server, dropped afterwards."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CREATE DATABASE run_local_scratch"))
    yield database_url.rsplit("/", 1)[0] + "/run_local_scratch"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("DROP DATABASE run_local_scratch WITH (FORCE)"))


def test_run_local_migrates_before_starting_the_processes(run_local, empty_database_url):
    # The process sees the schema at head: alembic_version holds a revision.
    check = ("python -c 'import os, sqlalchemy as sa; c = sa.create_engine(os.environ[\"DATABASE_URL\"]).connect(); "
             "print(\"revision\", c.execute(sa.text(\"SELECT version_num FROM alembic_version\")).scalar_one())'")
    result = run_local(f"check: {check}\n", EXCHANGE="binance", DATABASE_URL=empty_database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"check +\| revision \w+$", result.stdout, re.M), result.stdout


def test_run_local_only_starts_the_entries_named_by_only(run_local):
    result = run_local("first: echo first ran\nsecond: echo second ran\n", "--only", "second", EXCHANGE="binance")
    assert result.returncode == 0, result.stderr
    assert "second ran" in result.stdout and "first ran" not in result.stdout


def test_run_local_refuses_an_only_entry_the_procfile_lacks(run_local):
    result = run_local("first: echo first ran\n", "--only", "nosuch", EXCHANGE="binance")
    assert result.returncode == 2
    assert "no Procfile entry nosuch" in result.stderr and "first ran" not in result.stdout


def test_run_local_with_no_exchange_configured_points_the_workers_at_its_simulator(run_local):
    result = run_local('show: echo "exchange=$EXCHANGE url=$EXCHANGE_API_URL"\n', SIM_PORT="8123")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("demo exchange") == 1
    assert "exchange=binance url=http://127.0.0.1:8123" in result.stdout


def test_run_local_leaves_a_configured_exchange_alone(run_local, tmp_path):
    (tmp_path / ".env").write_text("EXCHANGE_API_URL=https://exchange.example\n")
    result = run_local('show: echo "exchange=${EXCHANGE:-unset} url=${EXCHANGE_API_URL:-unset}"\n')
    assert result.returncode == 0, result.stderr
    assert "demo exchange" not in result.stdout
    assert "exchange=unset url=unset" in result.stdout  # the process reads .env itself


def test_runs_start_show_cancel_and_list_a_run_as_the_api_does(run_cli, redis_url):
    import json

    import redis

    redis.Redis.from_url(redis_url).flushdb()
    assert run_cli("migrate").returncode == 0
    started = run_cli("runs", "start", "ohlc", "--symbol", "BTC/USD", "--priority", "9", "--json")
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout)
    assert run["priority"] == 9 and run["duplicate"] is False and run["scheduled_for"] is None

    shown = run_cli("runs", "show", run["task_id"])
    assert shown.returncode == 0, shown.stderr
    header, line = shown.stdout.splitlines()[:2]
    assert header.split()[:4] == ["ID", "KIND", "STATE", "PRI"] and line.split()[:4] == [
        run["task_id"], "ohlc", "PENDING", "9"]

    cancelled = run_cli("runs", "cancel", run["task_id"])
    assert cancelled.returncode == 0, cancelled.stderr
    assert "CANCELLED" in cancelled.stdout and "cancelled by cli" in cancelled.stdout
    again = run_cli("runs", "cancel", run["task_id"])
    assert again.returncode == 1 and "already CANCELLED" in again.stderr

    listed = run_cli("runs", "list", "--state", "cancelled", "--symbol", "BTC/USD", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["task_id"], r["cancelled_by"]) for r in json.loads(listed.stdout)] == [(run["task_id"], "cli")]
    assert run["task_id"] in run_cli("runs", "list").stdout


def test_runs_start_later_is_scheduled_and_bad_input_exits_2_naming_it(run_cli, redis_url):
    later = run_cli("runs", "start", "levels", "--countdown", "600")
    assert later.returncode == 0 and "scheduled for" in later.stdout, later.stderr
    assert "SCHEDULED" in run_cli("runs", "list").stdout
    bad_priority = run_cli("runs", "start", "ohlc", "--priority", "12")
    assert bad_priority.returncode == 2 and "priority must be an integer from 0 to 9" in bad_priority.stderr
    both = run_cli("runs", "start", "ohlc", "--countdown", "60", "--eta", "2030-01-01")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    unknown = run_cli("runs", "show", "no-such-run")
    assert unknown.returncode == 1 and "no run 'no-such-run'" in unknown.stderr
