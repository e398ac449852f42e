"""`candleflow status`, the pure half: inspect replies, queue lengths and rows into the document and the screen."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.cli.status import (
    add_status_parser,
    data_rows,
    queue_rows,
    render,
    run_rows,
    tasks_per_queue,
    workers_from_replies,
)
from services.core.priority import PRIORITY_STEPS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATS = {"ingest@a": {"pool": {"implementation": "celery.concurrency.prefork:TaskPool", "max-concurrency": 2}},
         "signals@b": {"pool": {"implementation": "celery.concurrency.thread:TaskPool", "max-concurrency": 4}}}
ACTIVE_QUEUES = {"ingest@a": [{"name": "ingest"}, {"name": "pipeline"}],
                 "signals@b": [{"name": "pipeline"}, {"name": "signals"}]}


def _task(queue: str | None, name: str = "x.y") -> dict:
    return {"id": "t", "name": name, "delivery_info": {"routing_key": queue} if queue else {}}


def test_each_answering_worker_is_named_with_its_queues_pool_and_concurrency():
    assert workers_from_replies(STATS, ACTIVE_QUEUES) == [
        {"worker": "ingest@a", "queues": ["ingest", "pipeline"], "pool": "prefork", "concurrency": 2},
        {"worker": "signals@b", "queues": ["pipeline", "signals"], "pool": "thread", "concurrency": 4}]


def test_tasks_are_counted_per_queue_from_delivery_info_or_else_the_routing_table():
    replies = {"active": {"ingest@a": [_task("ingest"), _task("pipeline")]},
               "reserved": {"ingest@a": [_task("ingest")], "signals@b": [_task(None, "signals.stage.signals")]},
               "scheduled": {"signals@b": [{"eta": "…", "request": _task("pipeline")}]}}
    counts = tasks_per_queue(replies, route=lambda name: name.split(".")[0])
    assert counts == {"active": Counter(ingest=1, pipeline=1), "reserved": Counter(ingest=1, signals=1),
                      "scheduled": Counter(pipeline=1)}


def test_a_queue_shows_its_waiting_messages_by_operator_priority_and_its_consumers():
    lengths = [0] * len(PRIORITY_STEPS)
    lengths[0], lengths[4] = 2, 5  # broker step 0 is operator priority 9, step 4 priority 5
    depths = {"ingest": lengths, "signals": [0] * len(PRIORITY_STEPS)}
    tasks = {"active": Counter(ingest=1), "reserved": Counter(), "scheduled": Counter(signals=3)}
    rows = queue_rows(["ingest", "signals"], depths, tasks, workers_from_replies(STATS, ACTIVE_QUEUES))
    assert rows == [
        {"queue": "ingest", "waiting": 7, "waiting_by_priority": {9: 2, 5: 5}, "active": 1, "reserved": 0,
         "scheduled": 0, "consumers": 1},
        {"queue": "signals", "waiting": 0, "waiting_by_priority": {}, "active": 0, "reserved": 0,
         "scheduled": 3, "consumers": 1}]


def test_the_last_run_is_aged_from_its_finish_or_from_its_creation_while_it_runs():
    rows = [{"kind": "all", "id": "r1", "state": "SUCCESS", "created_at": NOW - timedelta(hours=2),
             "finished_at": NOW - timedelta(minutes=90)},
            {"kind": "backfill", "id": "r2", "state": "STARTED", "created_at": NOW - timedelta(seconds=30),
             "finished_at": None}]
    assert run_rows(rows, NOW) == [
        {"kind": "all", "run_id": "r1", "state": "SUCCESS", "age_s": 5400.0, "finished": True},
        {"kind": "backfill", "run_id": "r2", "state": "STARTED", "age_s": 30.0, "finished": False}]


def test_data_age_counts_from_the_close_of_the_newest_closed_candle():
    rows = [{"timeframe": "1h", "instruments": 3, "with_candles": 2, "oldest": NOW - timedelta(hours=5),
             "newest": NOW - timedelta(hours=1)},
            {"timeframe": "4h", "instruments": 1, "with_candles": 0, "oldest": None, "newest": None}]
    assert data_rows(rows, NOW) == [
        {"timeframe": "1h", "instruments": 3, "with_candles": 2, "oldest_age_s": 4 * 3600.0, "newest_age_s": 0.0},
        {"timeframe": "4h", "instruments": 1, "with_candles": 0, "oldest_age_s": None, "newest_age_s": None}]


def _status(**changes) -> dict:
    workers = workers_from_replies(STATS, ACTIVE_QUEUES)
    depths = {"ingest": [3] + [0] * (len(PRIORITY_STEPS) - 1), "indicators": [0] * len(PRIORITY_STEPS)}
    tasks = {"active": Counter(ingest=1), "reserved": Counter(), "scheduled": Counter()}
    status = {"at": NOW.isoformat(), "timeout_s": 1.0, "workers": workers,
              "queues": queue_rows(["ingest", "indicators"], depths, tasks, workers),
              "runs": [{"kind": "all", "run_id": "r1", "state": "PARTIAL", "age_s": 5400.0, "finished": True}],
              "data": [{"timeframe": "1h", "instruments": 3, "with_candles": 2, "oldest_age_s": 14400.0,
                        "newest_age_s": 0.0}]}
    return {**status, **changes}


def test_the_screen_names_workers_queue_depths_runs_and_data_age():
    lines = render(_status()).splitlines()
    assert any(line.split() == ["ingest@a", "ingest,pipeline", "prefork", "2"] for line in lines)
    assert any(line.split() == ["ingest", "3", "p9:3", "1", "0", "0", "1"] for line in lines)
    assert any(line.split() == ["indicators", "0", "-", "0", "0", "0", "0", "(NONE)"] for line in lines)
    assert any(line.split() == ["all", "PARTIAL", "1.5h", "r1"] for line in lines)
    assert any(line.split() == ["1h", "2/3", "4.0h", "0s"] for line in lines)


def test_the_screen_says_so_when_no_worker_answered_and_there_is_nothing_on_record():
    text = render(_status(workers=[], runs=[], data=[]))
    assert "none: no worker answered" in text and "no runs on record" in text and "no active instruments" in text


@pytest.mark.parametrize(("argv", "watch"), [([], None), (["--watch"], 2.0), (["--watch", "5"], 5.0)])
def test_watch_takes_an_optional_number_of_seconds(argv, watch):
    parser = argparse.ArgumentParser()
    add_status_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["status", *argv]).watch == watch


def test_a_rabbitmq_queue_shows_its_total_without_a_priority_breakdown():
    tasks = tasks_per_queue({}, lambda name: "ingest")
    rows = queue_rows(["ingest"], {"ingest": 12}, tasks, [])
    assert rows[0]["waiting"] == 12 and rows[0]["waiting_by_priority"] == {}
