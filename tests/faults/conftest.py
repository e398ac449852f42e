"""The fault suite's fixtures: its own compose project on free ports, the expectations, the figures table."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from tests.e2e.conftest import docker_engine, image_variables  # noqa: F401 (fixtures, shared with e2e)
from tests.e2e.stack import ComposeStack, http, pick_ports
from tests.faults.figures import Expected, Row, expected_figures, format_table
from tests.faults.scenario import API_TOKEN, Scenario

PROJECT = "candleflow-faults"
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "BTC/USDT", "ETH/USDT"]
TIMEFRAME = "1h"
# The frozen simulated instant: half way through a bar, so the open bar is stored and never signals.
SIM_NOW = "2024-03-01T00:30:00Z"
SIM_NOW_MS = 1_709_253_000_000
HOUR_MS = 3_600_000
LOOKBACK_BARS = 1500
# Run settings of the faults env, and why each differs from the default.
FAULT_SETTINGS = {
    # Five instruments in five chains instead of one batch: a fault lands between stage tasks.
    "PIPELINE_BATCH_SIZE": "1",
    # The lost-run sweeper acts after a minute (its floor), so an interrupted run ends within the scenario.
    "LOST_RUN_AFTER_S": "60",
    # The lock's floor: a restarted beat takes its own lock back after 15 s rather than 60.
    "BEAT_LOCK_TIMEOUT_S": "15",
    # Enough history that a run lasts long enough to be hit mid-run (and EMA(200) has settled).
    "SYNC_LOOKBACK_BARS": str(LOOKBACK_BARS),
    # The simulator's clock is frozen; re-read it on every sync anyway, it restarts with the stack.
    "EXCHANGE_CLOCK_RECHECK_S": "0",
    # No wall-clock hourly run in the middle of a scenario: only the suite starts runs.
    "SCHEDULE_OVERRIDES": json.dumps({"pipeline-all-hourly": {"enabled": False}}),
}

ROWS: list[Row] = []


def pytest_terminal_summary(terminalreporter):
    if ROWS:
        terminalreporter.section("fault scenarios")
        for line in format_table(ROWS):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def stack(image_variables, tmp_path_factory) -> Iterator[ComposeStack]:  # noqa: F811 (the imported fixture)
    """The demo stack with the faults override (frozen simulator clock), healthy; removed with its volumes after."""
    settings = {**image_variables, **pick_ports(), **FAULT_SETTINGS, "API_TOKEN": API_TOKEN,
                "FLOWER_USER": "faults", "FLOWER_PASSWORD": "faults-flower-password",
                "SYMBOLS": ",".join(SYMBOLS), "TIMEFRAMES": TIMEFRAME, "FAULTS_SIM_NOW": SIM_NOW}
    env_file = tmp_path_factory.mktemp("compose") / "faults.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    stack = ComposeStack(PROJECT, env_file, {**os.environ, **settings},
                         files=("docker-compose.yml", "compose/faults.override.yml"))
    stack.compose("down", "--volumes", "--remove-orphans")  # leftovers of an interrupted run
    stack.compose("build", timeout=1200)
    try:
        stack.compose("up", "--detach")
        stack.wait_healthy(timeout=300)
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)


@pytest.fixture(scope="session")
def engine(stack):
    """Postgres through its published port, with the compose defaults' credentials."""
    engine = create_engine(f"postgresql+psycopg2://candleflow:candleflow@127.0.0.1:{stack.env['POSTGRES_PORT']}"
                           "/candleflow", pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def expected(stack) -> Expected:
    """The frozen clock checked over HTTP, then the candles an `all` run must store and the signals it must find."""
    clock = http("POST", stack.url("SIM_PORT", "/_sim/clock"), body={"now": SIM_NOW, "rate": 0})
    assert clock.status == 200, clock.text
    open_ts = SIM_NOW_MS - SIM_NOW_MS % HOUR_MS
    return expected_figures(stack.url("SIM_PORT", ""), SYMBOLS, TIMEFRAME, open_ts - LOOKBACK_BARS * HOUR_MS,
                            open_ts + HOUR_MS, open_ts)


@pytest.fixture
def scenario(request, stack, engine, expected, tmp_path) -> Iterator[Scenario]:
    """A scenario on empty market tables; its row joins the table whatever the outcome, its logs stay when it fails.

    A failed scenario may leave the stack broken (a dead container, a stuck run still holding its lock):
    the stack is then built again from empty volumes, so the next scenario's verdict is its own.
    """
    scenario = Scenario(stack, engine, expected, SYMBOLS, TIMEFRAME, Row(request.node.name, ""), tmp_path)
    scenario.reset_data()
    yield scenario
    ROWS.append(scenario.row)
    if not scenario.row.passed:
        stack.compose("down", "--volumes", "--timeout", "20", check=False)
        stack.compose("up", "--detach")
        stack.wait_healthy(timeout=300)
        engine.dispose()
