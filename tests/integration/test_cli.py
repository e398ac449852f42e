"""The `candleflow` console script as an operator runs it, against the simulator and real servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.exchange_sim.server import running_simulator

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "candleflow")


@pytest.fixture()
def run_cli(engine, database_url, redis_url):
    with running_simulator(symbols=["BTC/USD", "ETH/USD"], now="2024-03-01T00:30:00Z") as (url, _):
        base = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "EXCHANGE": "binance",
                "EXCHANGE_API_URL": url, "SYMBOLS": "BTC/USD,ETH/USD", "TIMEFRAMES": "1h",
                "SYNC_LOOKBACK_BARS": "24", "EXCHANGE_CLOCK_RECHECK_S": "0", "FETCH_RETRIES": "1", "BACKOFF_BASE_S": "0.01"}

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
    result = run_cli("backfill", "BTC/USD", "--timeframe", "1h", "--since", "2024-02-01", "--until", "2024-02-03")
    assert result.returncode == 0, result.stderr
    assert "BTC/USD 1h: 48 candles in 1 windows, 0 rejected, 0 missing" in result.stdout
    assert "window" in result.stderr and "100%" in result.stderr  # tqdm draws on stderr


def test_sync_updates_every_configured_instrument(run_cli):
    result = run_cli("sync")
    assert result.returncode == 0, result.stderr
    assert "BTC/USD 1h: 25 candles" in result.stdout and "ETH/USD 1h: 25 candles" in result.stdout


def test_a_symbol_the_exchange_does_not_list_fails_with_exit_1_and_says_why(run_cli):
    result = run_cli("backfill", "DOGE/USD", "--since", "2024-02-01", "--quiet")
    assert result.returncode == 1
    assert "does not list symbol 'DOGE/USD'" in result.stderr


def test_a_malformed_variable_stops_the_command_naming_it(run_cli):
    result = run_cli("sync", SYMBOLS="btcusd")
    assert result.returncode == 2
    assert "SYMBOLS" in result.stderr and "BASE/QUOTE" in result.stderr
