"""Several server processes, one simulator: clock, fault counters and request log are shared after fork."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.exchange_sim.controller import Simulator
from services.exchange_sim.faults import RequestContext
from services.exchange_sim.shared import RequestLog
from tests.unit.exchange_sim.served import http, served_simulator

ROOT = Path(__file__).resolve().parents[3]
KLINES = "/api/v3/klines"


def _work(sim: Simulator) -> None:
    """What one forked server process does to the shared state."""
    for _ in range(50):
        sim.record_status(sim.record_request(KLINES, "symbol=BTCUSD"), 200)
    for _ in range(30):
        sim.faults.request_fault(RequestContext(KLINES, "BTCUSD", "1h"))
    for _ in range(10):
        sim.advance(1)


def _in_a_fresh_interpreter(scenario: str) -> None:
    """Run `scenario` (a function of this module) in a new single-threaded Python.

    Forking the test runner itself is unsafe: threads left by earlier tests may hold a lock
    (logging's, say) at the fork, and a child that needs it then waits forever.
    """
    code = f"from tests.unit.exchange_sim.test_shared_state import {scenario}; {scenario}()"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_forked_processes_add_up_in_one_state():
    _in_a_fresh_interpreter("forked_processes_add_up_in_one_state")


def test_rules_changed_in_one_process_are_what_the_others_match():
    _in_a_fresh_interpreter("rules_changed_in_one_process_are_what_the_others_match")


def forked_processes_add_up_in_one_state():
    sim = Simulator(now="2024-03-01T00:00:00Z")
    sim.set_faults([{"kind": "http_503", "times": 40}])
    start = sim.now_ms()
    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=_work, args=(sim,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert sim.request_counts() == {KLINES: 150}
    assert [e["status"] for e in sim.recent_requests()] == [200] * 150
    # 90 matching requests in three processes: exactly `times` of them failed, none twice.
    assert [(r["seen"], r["fired"]) for r in sim.faults.describe()] == [(40, 40)]
    assert sim.now_ms() == start + 30_000


def rules_changed_in_one_process_are_what_the_others_match():
    sim = Simulator()
    fork = multiprocessing.get_context("fork")
    child = fork.Process(target=sim.add_faults, args=([{"kind": "http_429", "symbol": "ETH/USD", "times": 1}],))
    child.start()
    child.join(30)
    assert sim.faults.request_fault(RequestContext(KLINES, "BTCUSD")) is None
    assert sim.faults.request_fault(RequestContext(KLINES, "ETHUSD")).kind == "http_429"
    assert sim.faults.request_fault(RequestContext(KLINES, "ETHUSD")) is None  # spent


def test_the_request_log_keeps_the_last_entries_and_cuts_long_queries():
    log = RequestLog(keep=3)
    numbers = [log.record(f"/p{i}", "q" * 5000, i) for i in range(5)]
    log.set_status(numbers[0], 500)  # gone from the ring: ignored
    log.set_status(numbers[4], 201)
    recent = log.recent()
    assert [(e["path"], e["sim_now_ms"], e["status"]) for e in recent] == [
        ("/p2", 2, None), ("/p3", 3, None), ("/p4", 4, 201)]
    assert 1000 < len(recent[0]["query"]) < 2048
    assert log.counts() == {f"/p{i}": 1 for i in range(5)}
    log.reset()
    assert log.recent() == [] and log.counts() == {}
    log.record("/again", "", 9)
    assert [e["path"] for e in log.recent()] == ["/again"]


@pytest.fixture(scope="module")
def served():
    """The CLI's server: two processes, as the Procfile and the container run it."""
    with served_simulator() as url:
        yield url


def test_the_controls_hold_across_the_server_processes(served):
    http("DELETE", f"{served}/_sim/requests")
    http("POST", f"{served}/_sim/faults", [{"kind": "http_503", "path": KLINES, "times": 6}])
    page = f"{served}{KLINES}?symbol=BTCUSD&interval=1h&limit=2"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: http("GET", page)[0], range(24)))
    assert sorted(statuses) == [200] * 18 + [503] * 6
    assert http("GET", f"{served}/_sim/faults")[1]["rules"][0]["fired"] == 6
    seen = http("GET", f"{served}/_sim/requests")[1]
    assert seen["counts"] == {KLINES: 24} and sorted(e["status"] for e in seen["recent"]) == sorted(statuses)
    http("DELETE", f"{served}/_sim/faults")
    moved = http("POST", f"{served}/_sim/clock", {"advance": 3600})[1]["now_ms"]
    with ThreadPoolExecutor(8) as pool:
        times = set(pool.map(lambda _: http("GET", f"{served}/api/v3/time")[1]["serverTime"], range(16)))
    assert times == {moved}
