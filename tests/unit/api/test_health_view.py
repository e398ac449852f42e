"""The background readiness view: first read waits for one round, later reads are served from memory."""

from __future__ import annotations

import threading

from services.api.health_view import HealthReading, HealthView


def test_later_reads_are_served_from_memory_and_the_view_notices_when_it_goes_stale():
    calls = []
    gate = threading.Event()

    def check() -> HealthReading:
        calls.append(1)
        if len(calls) > 1:
            gate.wait(5)  # hold the second round, so the reading below stays the first one
        return HealthReading({"redis": "ok"}, [], checked_at=1000.0)

    view = HealthView(check, interval_s=0.01)
    first = view.read(first_wait_s=5)
    assert first is not None and first.checks == {"redis": "ok"}
    assert view.read(first_wait_s=0) is first
    assert view.stale(first), "a reading from 1970 is older than three refreshes"
    gate.set()


def test_a_view_that_never_answers_gives_none_after_the_first_wait():
    never = threading.Event()
    view = HealthView(lambda: never.wait(5) or HealthReading({}, []), interval_s=1)
    assert view.read(first_wait_s=0.05) is None
    never.set()


def test_the_refresher_stops_when_nobody_reads_and_starts_again_on_the_next_read():
    view = HealthView(lambda: HealthReading({}, []), interval_s=0.01, idle_after=2)
    view.read(first_wait_s=5)
    stopped = view._thread
    stopped.join(5)
    assert not stopped.is_alive(), "unread for two intervals, the refresher stopped"
    view.read(first_wait_s=5)
    assert view._thread is not stopped, "the next read started a new one"
