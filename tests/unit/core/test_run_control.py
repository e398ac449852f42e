"""The pure parts of run control: delays, stage task ids, a cancelled run's outcome, the lost-run decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.cli.runs import format_table
from services.core.pipeline.cancel import run_task_ids
from services.core.pipeline.lost import Suspect, lost_runs, message_keys
from services.core.pipeline.runs import MAX_DELAY_S, InvalidRunRequest, cancelled_outcome, stage_task_id, start_time

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_a_countdown_starts_the_run_that_many_seconds_from_now():
    assert start_time(90, None, NOW) == NOW + timedelta(seconds=90)
    assert start_time(MAX_DELAY_S, None, NOW) == NOW + timedelta(seconds=MAX_DELAY_S)


def test_an_eta_starts_the_run_then_and_no_delay_means_now():
    assert start_time(None, NOW + timedelta(hours=3), NOW) == NOW + timedelta(hours=3)
    assert start_time(None, None, NOW) is None


@pytest.mark.parametrize(("countdown", "eta", "parameter"), [
    (0, None, "countdown"), (-5, None, "countdown"), (MAX_DELAY_S + 1, None, "countdown"), (True, None, "countdown"),
    (None, NOW, "eta"), (None, NOW - timedelta(seconds=1), "eta"),
    (None, NOW + timedelta(seconds=MAX_DELAY_S + 1), "eta"), (60, NOW + timedelta(hours=1), "eta"),
])
def test_a_delay_out_of_bounds_or_both_at_once_is_refused_naming_the_parameter(countdown, eta, parameter):
    with pytest.raises(InvalidRunRequest) as refused:
        start_time(countdown, eta, NOW)
    assert refused.value.parameter == parameter


def test_every_task_of_a_run_has_an_id_known_from_the_run_and_its_batches():
    assert stage_task_id("r1", 0, "ohlc") == "r1.0.ohlc"
    assert run_task_ids("r1", "all", [["BTC/USD 1h", "ETH/USD 1h"], ["BTC/USD 4h"]]) == [
        "r1", "r1.0.ohlc", "r1.0.indicators", "r1.0.signals", "r1.1.ohlc", "r1.1.indicators", "r1.1.signals"]
    assert run_task_ids("r2", "levels", []) == ["r2"]  # queued: only its start exists yet


def test_a_cancelled_run_names_the_instruments_that_completed_and_marks_the_rest_cancelled():
    ok = {"status": "ok", "seconds": 0.1}
    stages = {"BTC/USD 1h": [{"stage": "ohlc", **ok}, {"stage": "indicators", **ok}],
              "ETH/USD 1h": [{"stage": "ohlc", **ok}],
              "SOL/USD 1h": [{"stage": "ohlc", "status": "failed", "error": "BadSymbol"},
                             {"stage": "indicators", "status": "skipped", "reason": "ohlc failed"}]}
    batches = [["BTC/USD 1h", "ETH/USD 1h"], ["SOL/USD 1h", "XRP/USD 1h"]]
    entries, completed, not_completed = cancelled_outcome(batches, ("ohlc", "indicators"), stages)
    assert completed == ["BTC/USD 1h"]
    assert not_completed == ["ETH/USD 1h", "SOL/USD 1h", "XRP/USD 1h"]
    statuses = {(e["instrument"], e["stage"]): e["status"] for e in entries}
    assert statuses == {("BTC/USD 1h", "ohlc"): "ok", ("BTC/USD 1h", "indicators"): "ok",
                        ("ETH/USD 1h", "ohlc"): "ok", ("ETH/USD 1h", "indicators"): "cancelled",
                        ("SOL/USD 1h", "ohlc"): "failed", ("SOL/USD 1h", "indicators"): "skipped",
                        ("XRP/USD 1h", "ohlc"): "cancelled", ("XRP/USD 1h", "indicators"): "cancelled"}


def _suspect(run_id: str, quiet_for_s: float, starts_in_s: float | None = None) -> Suspect:
    starts = None if starts_in_s is None else NOW + timedelta(seconds=starts_in_s)
    return Suspect(run_id, "all", {}, NOW - timedelta(seconds=quiet_for_s), starts)


def test_a_quiet_run_with_no_message_in_the_broker_is_lost():
    assert [s.run_id for s in lost_runs([_suspect("gone", 301)], set(), NOW, 300)] == ["gone"]
    assert [s.run_id for s in lost_runs([_suspect("edge", 300)], set(), NOW, 300)] == ["edge"]


def test_a_run_with_any_message_in_the_broker_or_recent_progress_is_not_lost():
    assert lost_runs([_suspect("queued", 3600)], {"queued"}, NOW, 300) == []
    assert lost_runs([_suspect("busy", 299)], set(), NOW, 300) == []


def test_a_delayed_run_is_not_lost_before_its_start_time_and_a_grace_after_it():
    suspects = [_suspect("later", 7200, starts_in_s=60), _suspect("just-due", 7200, starts_in_s=-100),
                _suspect("overdue", 7200, starts_in_s=-301)]
    assert [s.run_id for s in lost_runs(suspects, set(), NOW, 300)] == ["overdue"]


def test_the_broker_lists_read_are_every_queue_at_every_priority_step_as_kombu_names_them():
    keys = message_keys(["pipeline", "ingest"], range(3))
    assert keys == ["pipeline", "pipeline\x06\x161", "pipeline\x06\x162", "ingest", "ingest\x06\x161",
                    "ingest\x06\x162"]
    assert len(message_keys()) == 4 * 10


def test_the_cli_table_aligns_columns_and_shows_missing_values_as_a_dash():
    table = format_table([{"id": "a", "scope": {}}, {"id": "bbb", "scope": {"symbol": "BTC/USD"}}],
                         (("ID", "id"), ("SCOPE", "scope"), ("STATE", "state")))
    assert table.splitlines() == ['ID   SCOPE                  STATE', 'a    -                      -',
                                  'bbb  {"symbol": "BTC/USD"}  -']
