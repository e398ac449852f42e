"""The stage table: every kind made of known stages, every stage a registered task on its own queue."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.core.celery_app import TASK_ROUTES, WORKER_QUEUES
from services.core.pipeline.runs import InvalidRunRequest, validate_request
from services.core.pipeline.stages import KIND_STAGES, STAGES, stage_params
from services.core.pipeline.tasks import plan_batches, plan_instruments, summarise


def test_every_kind_is_a_tuple_of_stages_from_the_table():
    assert all(KIND_STAGES[kind] and set(KIND_STAGES[kind]) <= set(STAGES) for kind in KIND_STAGES)
    assert KIND_STAGES["all"] == ("ohlc", "indicators", "signals")


@pytest.mark.parametrize("name", STAGES)
def test_a_stage_task_is_routed_to_the_queue_its_entry_names(name):
    stage = STAGES[name]
    assert stage.queue in WORKER_QUEUES
    assert TASK_ROUTES[f"{stage.task.split('.')[0]}.*"] == {"queue": stage.queue}


@pytest.mark.parametrize("queue", WORKER_QUEUES)
def test_each_worker_registers_a_task_for_every_stage_of_its_queue(queue):
    code = (f"import services.{queue}.tasks; from services.core.celery_app import app; "
            "print(' '.join(sorted(n for n in app.tasks if '.stage.' in n)))")
    registered = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.split())
    assert registered == {stage.task for stage in STAGES.values() if stage.queue == queue}


def test_a_stage_that_waits_names_a_stage_with_a_watermark():
    waiting = [stage for stage in STAGES.values() if stage.waits_for]
    assert waiting, "signals waits for indicators"
    assert all(STAGES[stage.waits_for].watermark for stage in waiting)


def test_a_stage_is_handed_only_the_run_parameters_it_accepts():
    params = {"since": "2024-01-01", "until": "2024-02-01"}
    assert stage_params(STAGES["backfill"], params) == params
    assert stage_params(STAGES["indicators"], params) == {"since": "2024-01-01"}
    assert stage_params(STAGES["levels"], params) == {}


@pytest.mark.parametrize(("kind", "extra", "parameter"), [
    ("ohlc", {"since": "2024-01-01"}, "since"),
    ("levels", {"since": "2024-01-01"}, "since"),
    ("all", {"until": "2024-01-01"}, "until"),
    ("backfill", {"since": "2024-01-01"}, "symbol"),
    ("backfill", {"symbol": "BTC/USD"}, "since"),
    ("backfill", {"symbol": "BTC/USD", "since": "2024-02-01", "until": "2024-01-01"}, "until"),
])
def test_a_parameter_no_stage_of_the_kind_uses_or_a_missing_one_is_refused_by_name(kind, extra, parameter):
    with pytest.raises(InvalidRunRequest) as refused:
        validate_request(kind, **extra)
    assert refused.value.parameter == parameter


def test_a_parameter_one_stage_of_the_kind_uses_is_accepted():
    assert validate_request("all", since="2024-01-01").scope() == {"since": "2024-01-01T00:00:00Z"}


UNIVERSE = {"BTC/USD": ["1h", "4h"], "ETH/USD": ["1h"]}


def test_a_run_without_symbols_covers_every_active_instrument_in_its_own_timeframes():
    assert plan_instruments({}, UNIVERSE) == ([("BTC/USD", "1h"), ("BTC/USD", "4h"), ("ETH/USD", "1h")], [])


def test_a_timeframe_over_the_universe_selects_the_instruments_that_keep_it():
    assert plan_instruments({"timeframe": "4h"}, UNIVERSE) == ([("BTC/USD", "4h")], [])
    assert plan_instruments({"timeframe": "1d"}, UNIVERSE) == ([], [])


def test_named_symbols_run_in_the_named_timeframes_and_what_they_lack_is_refused_with_its_reason():
    pairs, refused = plan_instruments({"symbol": "BTC/USD,ETH/USD,SOL/USD", "timeframe": "4h"}, UNIVERSE)
    assert pairs == [("BTC/USD", "4h")]
    assert [(r["symbol"], r["timeframe"], r["failed"]["stage"]) for r in refused] == [
        ("ETH/USD", "4h", "plan"), ("SOL/USD", "4h", "plan")]
    assert "does not keep 4h (it keeps 1h)" in refused[0]["failed"]["error"]
    assert "not an active instrument" in refused[1]["failed"]["error"]
    assert refused[1]["stages"] == [{**refused[1]["failed"], "status": "failed"}]


def test_a_refused_instrument_counts_as_failed_in_the_run_state():
    _pairs, refused = plan_instruments({"symbol": "SOL/USD"}, UNIVERSE)
    assert summarise(refused)[0] == "FAILURE"


def _carry(symbol: str, failed: dict | None = None) -> dict:
    return {"symbol": symbol, "timeframe": "1h", "failed": failed, "stages": []}


def test_a_run_succeeds_when_no_instrument_failed_is_partial_with_some_and_fails_with_all():
    bad = {"stage": "ohlc", "error": "BadSymbol: ZZ/ZZ"}
    assert summarise([_carry("BTC/USD"), _carry("ETH/USD")]) == ("SUCCESS", [])
    assert summarise([_carry("BTC/USD"), _carry("ZZ/ZZ", bad)]) == (
        "PARTIAL", [{"instrument": "ZZ/ZZ 1h", "stage": "ohlc", "error": "BadSymbol: ZZ/ZZ"}])
    assert summarise([_carry("ZZ/ZZ", bad)])[0] == "FAILURE"


def test_an_overlong_value_is_refused_by_its_length_without_being_quoted_back():
    with pytest.raises(InvalidRunRequest) as refused:
        validate_request("ohlc", timeframe="1" * 5000 + "h")
    assert refused.value.parameter == "timeframe" and len(str(refused.value)) < 100


def test_batches_hold_one_timeframe_each_and_at_most_the_batch_size():
    instruments, _refused = plan_instruments({}, {s: ["1h", "4h"] for s in ("A/USD", "B/USD", "C/USD")})
    assert plan_batches(instruments, 2) == [
        ("1h", ["A/USD", "B/USD"]), ("1h", ["C/USD"]), ("4h", ["A/USD", "B/USD"]), ("4h", ["C/USD"])]
    assert plan_batches(instruments, 50) == [("1h", ["A/USD", "B/USD", "C/USD"]), ("4h", ["A/USD", "B/USD", "C/USD"])]
