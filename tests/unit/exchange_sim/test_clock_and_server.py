"""The simulated clock and the CLI/config plumbing around the server."""

from __future__ import annotations

import json

import pytest

from services.exchange_sim.clock import SimClock, parse_time_ms
from services.exchange_sim.server import load_fault_file, parse_args


class FakeWall:
    def __init__(self):
        self.seconds = 1_000.0

    def __call__(self):
        return self.seconds


def test_times_parse_from_iso_strings_and_milliseconds():
    assert parse_time_ms("2024-03-01T00:00:00Z") == 1_709_251_200_000
    assert parse_time_ms("2024-03-01T01:00:00+01:00") == 1_709_251_200_000
    assert parse_time_ms("2024-03-01") == 1_709_251_200_000
    assert parse_time_ms("1709251200000") == parse_time_ms(1_709_251_200_000)


def test_a_frozen_clock_moves_only_when_told():
    wall = FakeWall()
    clock = SimClock(5_000, wall=wall)
    wall.seconds += 60
    assert clock.now_ms() == 5_000
    assert clock.advance(1.5) == 6_500
    assert clock.set(100) == 100


def test_a_running_clock_follows_wall_time_at_its_rate():
    wall = FakeWall()
    clock = SimClock(0, rate=60.0, wall=wall)
    wall.seconds += 2
    assert clock.now_ms() == 120_000
    clock.set_rate(0)
    wall.seconds += 2
    assert clock.now_ms() == 120_000


def test_cli_options_have_demo_friendly_defaults():
    args = parse_args(["--port", "9000", "--symbols", "BTC/USD,ETH/USD"])
    assert (args.port, args.host, args.seed, args.now, args.clock_rate) == (9000, "127.0.0.1", 0, None, 1.0)
    assert args.symbols == "BTC/USD,ETH/USD"


@pytest.mark.parametrize("content", [[{"kind": "http_429"}], {"rules": [{"kind": "http_429"}]}])
def test_a_fault_file_holds_a_list_of_rules_or_an_object_with_rules(tmp_path, content):
    file = tmp_path / "faults.json"
    file.write_text(json.dumps(content))
    assert load_fault_file(file) == [{"kind": "http_429"}]
