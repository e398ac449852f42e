"""The pure planning of a resume: outcomes from a run's records, which instruments are short of their last
stage, where each restarts, and the batches they restart in."""

from __future__ import annotations

import pytest

from services.core.pipeline.chain import new_carry
from services.core.pipeline.resume import (
    ResumeBatch,
    incomplete,
    next_stage,
    parse_label,
    plan_resume,
    record_outcomes,
)

STAGES = ("ohlc", "indicators", "signals")
BATCHES = [["BTC/USD 1h", "ETH/USD 1h"], ["SOL/USD 1h"], ["BTC/USD 4h"]]


def _ok(stage: str) -> dict:
    return {"stage": stage, "status": "ok", "candles": 3}


def _failed(stage: str) -> dict:
    return {"stage": stage, "status": "failed", "error": "exchange said no"}


def _skipped(stage: str) -> dict:
    return {"stage": stage, "status": "skipped", "reason": "ohlc failed"}


# Recorded in finishing order, which is not stage order (a retried batch records later).
PROGRESS = {
    "BTC/USD 1h": [_ok("indicators"), _ok("ohlc"), _ok("signals")],
    "ETH/USD 1h": [_ok("ohlc")],
    "BTC/USD 4h": [_failed("ohlc")],
    "XRP/USD *": [{"stage": "plan", "status": "failed", "error": "not an active instrument"}],
}


def test_a_label_splits_at_its_last_space_and_a_label_without_one_is_refused():
    assert parse_label("BTC/USD 1h") == ("BTC/USD", "1h")
    assert parse_label("BRK B 1d") == ("BRK B", "1d")
    with pytest.raises(ValueError, match="not an instrument label"):
        parse_label("BTC/USD")


def test_outcomes_from_the_records_cover_every_planned_instrument_in_stage_order_then_the_refused():
    outcomes = record_outcomes(BATCHES, STAGES, PROGRESS)
    assert [(o["symbol"], o["timeframe"]) for o in outcomes] == [
        ("BTC/USD", "1h"), ("ETH/USD", "1h"), ("SOL/USD", "1h"), ("BTC/USD", "4h"), ("XRP/USD", "*")]
    assert [e["stage"] for e in outcomes[0]["stages"]] == ["ohlc", "indicators", "signals"]
    assert outcomes[0]["failed"] is None
    assert outcomes[2] == {"symbol": "SOL/USD", "timeframe": "1h", "stages": [], "failed": None}  # nothing recorded
    assert outcomes[3]["failed"] == {"stage": "ohlc", "error": "exchange said no"}
    assert outcomes[4]["failed"] == {"stage": "plan", "error": "not an active instrument"}


def test_the_first_failed_entry_is_the_failure():
    outcome, = record_outcomes([["BTC/USD 1h"]], STAGES, {"BTC/USD 1h": [_failed("indicators"), _failed("ohlc")]})
    assert outcome["failed"]["stage"] == "ohlc"


def test_a_planned_instrument_is_incomplete_until_its_kinds_last_stage_is_recorded_whatever_its_status():
    outcomes = record_outcomes(BATCHES, STAGES, PROGRESS)
    short = incomplete(BATCHES, STAGES, outcomes)
    assert [(o["symbol"], o["timeframe"]) for o in short] == [("ETH/USD", "1h"), ("SOL/USD", "1h"), ("BTC/USD", "4h")]
    done = {**PROGRESS, "BTC/USD 4h": [_failed("ohlc"), _skipped("indicators"), _skipped("signals")]}
    assert ("BTC/USD", "4h") not in {(o["symbol"], o["timeframe"])
                                     for o in incomplete(BATCHES, STAGES, record_outcomes(BATCHES, STAGES, done))}


def test_a_refused_instrument_is_never_incomplete_it_was_not_planned():
    outcomes = record_outcomes([], STAGES, {"XRP/USD *": PROGRESS["XRP/USD *"]})
    assert incomplete([], STAGES, outcomes) == []


def test_an_instrument_restarts_at_its_first_stage_without_an_entry():
    outcomes = {f"{o['symbol']} {o['timeframe']}": o for o in record_outcomes(BATCHES, STAGES, PROGRESS)}
    assert next_stage(outcomes["ETH/USD 1h"], STAGES) == "indicators"
    assert next_stage(outcomes["SOL/USD 1h"], STAGES) == "ohlc"
    assert next_stage(outcomes["BTC/USD 4h"], STAGES) == "indicators"  # failed: skipped onward, not redone


def test_resumed_batches_group_by_timeframe_and_next_stage_at_most_size_each_in_plan_order():
    progress = {f"S{i}/USD 1h": [_ok("ohlc")] for i in range(5)}
    progress["S9/USD 4h"] = [_ok("ohlc")]
    batches = [[f"S{i}/USD 1h" for i in range(7)], ["S9/USD 4h"]]
    planned = plan_resume(incomplete(batches, STAGES, record_outcomes(batches, STAGES, progress)), STAGES, 2)
    assert [(b.timeframe, b.first, b.symbols) for b in planned] == [
        ("1h", "indicators", ["S0/USD", "S1/USD"]), ("1h", "indicators", ["S2/USD", "S3/USD"]),
        ("1h", "indicators", ["S4/USD"]), ("1h", "ohlc", ["S5/USD", "S6/USD"]), ("4h", "indicators", ["S9/USD"])]
    assert planned[0].outcomes["S0/USD"] == {"stages": [_ok("ohlc")], "failed": None}


def test_a_resumed_carry_keeps_what_the_records_say_each_instrument_did():
    batch = ResumeBatch("4h", "indicators", ["BTC/USD"], {"BTC/USD": {"stages": [_failed("ohlc")],
                                                                     "failed": {"stage": "ohlc", "error": "no"}}})
    carry = new_carry("r1", "kraken", batch.symbols, batch.timeframe, {}, batch.outcomes)
    assert carry["outcomes"] == batch.outcomes and carry["symbols"] == ["BTC/USD"]
    assert new_carry("r1", "kraken", ["ETH/USD"], "1h", {})["outcomes"] == {"ETH/USD": {"stages": [], "failed": None}}


def test_nothing_to_resume_when_every_planned_instrument_reached_its_last_stage():
    progress = {"BTC/USD 1h": [_ok("ohlc"), _ok("indicators"), _ok("signals")]}
    assert plan_resume(incomplete([["BTC/USD 1h"]], STAGES, record_outcomes([["BTC/USD 1h"]], STAGES, progress)),
                       STAGES, 50) == []


def test_a_skip_after_a_failure_a_later_copy_overwrote_counts_as_not_done_and_a_real_one_as_done():
    after_ohlc = {"status": "skipped", "reason": "ohlc failed", "after": "ohlc"}
    progress = {
        # Two copies of BTC's ohlc ran: one failed and its chain skipped onward, the other ended ok over it.
        "BTC/USD 1h": [_ok("ohlc"), {"stage": "indicators", **after_ohlc}, {"stage": "signals", **after_ohlc}],
        # ETH's ohlc really failed: its skips stand and it is complete.
        "ETH/USD 1h": [_failed("ohlc"), {"stage": "indicators", **after_ohlc}, {"stage": "signals", **after_ohlc}],
    }
    batches = [["BTC/USD 1h", "ETH/USD 1h"]]
    outcomes = record_outcomes(batches, STAGES, progress)
    btc, eth = outcomes
    assert [entry["stage"] for entry in btc["stages"]] == ["ohlc"] and btc["failed"] is None
    assert [entry["stage"] for entry in eth["stages"]] == ["ohlc", "indicators", "signals"]
    assert eth["failed"] == {"stage": "ohlc", "error": "exchange said no"}
    assert incomplete(batches, STAGES, outcomes) == [btc]
    assert next_stage(btc, STAGES) == "indicators"
