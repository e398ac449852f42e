"""The e2e suite's fixtures: a running Docker engine, the images, and the demo stack up for the session."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.stack import ROOT, ComposeStack, pick_ports

PROJECT = "candleflow-e2e"
API_TOKEN = "e2e-token"
FLOWER_CREDENTIALS = ("e2e-operator", "e2e-flower-password")

# (step, seconds) for the summary at the end of the run: build and start-up times are worth watching.
TIMINGS: list[tuple[str, float]] = []


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("e2e timings")
        for step, seconds in TIMINGS:
            terminalreporter.write_line(f"{step:<28} {seconds:7.1f} s")


def _timed(label: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, text=True, capture_output=True, **kwargs)
    TIMINGS.append((label, time.monotonic() - started))
    if result.returncode != 0:
        raise AssertionError(f"{label} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """dockerd answering and the compose plugin installed; CI machines start with neither running."""
    _timed("engine", [str(ROOT / "compose" / "ensure-engine")])


@pytest.fixture(scope="session")
def image_variables(docker_engine) -> dict[str, str]:
    """The *_IMAGE variables: official images when a registry answers, offline stand-ins otherwise."""
    out = _timed("third-party images", [str(ROOT / "compose" / "select-images")]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture(scope="session")
def stack(image_variables, tmp_path_factory) -> Iterator[ComposeStack]:
    """The demo stack, built and healthy; torn down with its volumes at the end of the session."""
    settings = {
        **image_variables,
        **pick_ports(),
        "API_TOKEN": API_TOKEN,
        "FLOWER_USER": FLOWER_CREDENTIALS[0],
        "FLOWER_PASSWORD": FLOWER_CREDENTIALS[1],
        "SYMBOLS": "BTC/USD,ETH/USD",
        "TIMEFRAMES": "1h",
    }
    env_file = tmp_path_factory.mktemp("compose") / "e2e.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    stack = ComposeStack(PROJECT, env_file, {**os.environ, **settings})
    stack.compose("down", "--volumes", "--remove-orphans")  # leftovers of an interrupted run

    started = time.monotonic()
    stack.compose("build", timeout=1200)
    TIMINGS.append(("app image build", time.monotonic() - started))
    started = time.monotonic()
    try:
        stack.compose("up", "--detach")
        stack.wait_healthy(timeout=300)
        TIMINGS.append(("up until healthy", time.monotonic() - started))
        yield stack
    finally:
        started = time.monotonic()
        stack.compose("down", "--volumes", "--remove-orphans", check=False)
        TIMINGS.append(("down -v", time.monotonic() - started))
