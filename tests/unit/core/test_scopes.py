"""Run scopes: comma lists, relative ranges, and which kinds take which range parameter."""

from __future__ import annotations

import pytest

from services.core.pipeline.runs import KIND_STAGES, InvalidRunRequest, request_of, validate_request
from services.core.pipeline.scopes import canonical_symbols, canonical_timeframes, resolve_range
from services.core.pipeline.stages import STAGES
from services.core.timeparse import parse_instant_ms

NOW = parse_instant_ms("2024-03-10T12:34:56Z")


def test_lists_are_one_spelling_per_set():
    assert canonical_symbols("ETH/USD, BTC/USD,ETH/USD", "kraken") == "BTC/USD,ETH/USD"
    assert canonical_timeframes("1d,1h,4h,1h") == "1h,4h,1d"


@pytest.mark.parametrize(("value", "words"), [("BTC/USD,,ETH/USD", "empty item"), ("BTC/USD,btc", "malformed"),
                                              (",".join(f"A{i:02d}/USD" for i in range(201)), "at most 200")])
def test_a_bad_symbol_list_is_refused_naming_symbol(value, words):
    with pytest.raises(InvalidRunRequest) as refused:
        validate_request("ohlc", symbol=value)
    assert refused.value.parameter == "symbol" and words in str(refused.value)


def test_a_bad_timeframe_in_a_list_is_refused_naming_timeframe():
    with pytest.raises(InvalidRunRequest) as refused:
        validate_request("ohlc", timeframe="1h,2x")
    assert refused.value.parameter == "timeframe"


def test_the_same_set_in_another_order_locks_as_the_same_run():
    one = validate_request("ohlc", symbol="ETH/USD,BTC/USD", timeframe="4h,1h")
    other = validate_request("ohlc", symbol="BTC/USD,ETH/USD", timeframe="1h,4h")
    assert one.dedup_key() == other.dedup_key()
    assert request_of("ohlc", one.scope()) == one


def test_days_and_hours_end_now_and_start_on_a_bar_boundary():
    assert resolve_range({"days": 1}, "1h", NOW) == {"since": "2024-03-09T12:00:00Z"}
    assert resolve_range({"hours": 3}, "4h", NOW) == {"since": "2024-03-10T08:00:00Z"}


def test_bars_counts_closed_bars_of_the_batch_timeframe_before_the_open_one():
    assert resolve_range({"bars": 2}, "1h", NOW) == {"since": "2024-03-10T10:00:00Z"}
    assert resolve_range({"bars": 2}, "1d", NOW) == {"since": "2024-03-08T00:00:00Z"}


def test_an_absolute_range_passes_through():
    scope = {"since": "2024-01-01T00:00:00Z", "until": "2024-02-01T00:00:00Z", "symbol": "BTC/USD"}
    assert resolve_range(scope, "1h", NOW) == {"since": "2024-01-01T00:00:00Z", "until": "2024-02-01T00:00:00Z"}


# Every kind and range parameter: taken where a stage of the kind takes since (until: where one takes until).
_RANGE = {"since": "2024-01-01", "until": "2024-02-01", "days": 30, "hours": 12, "bars": 100}


def _takes(kind: str, name: str) -> bool:
    accepted = frozenset().union(*(STAGES[stage].accepts for stage in KIND_STAGES[kind]))
    return ("since" if name in ("days", "hours", "bars") else name) in accepted


@pytest.mark.parametrize("kind", list(KIND_STAGES))
@pytest.mark.parametrize("name", list(_RANGE))
def test_every_kind_honours_or_refuses_every_range_parameter(kind, name):
    extra = {"symbol": "BTC/USD"}
    extra.update({"since": "2023-12-01"} if name == "until" else {})
    extra.update({name: _RANGE[name]})
    if _takes(kind, name) and (name != "until" or _takes(kind, "since")):
        scope = validate_request(kind, **extra).scope()
        assert name in scope
    else:
        with pytest.raises(InvalidRunRequest) as refused:
            validate_request(kind, **extra)
        assert refused.value.parameter in (name, "since")
        assert "does not use" in str(refused.value)


def test_the_kinds_that_take_a_range_are_the_documented_ones():
    takers = sorted(kind for kind in KIND_STAGES if _takes(kind, "since"))
    # all: the sync runs as always, its indicators and signals are recomputed from the start given.
    assert takers == ["all", "backfill", "ema", "indicators", "patterns", "regime", "signals"]
    assert [kind for kind in KIND_STAGES if _takes(kind, "until")] == ["backfill"]


def test_a_backfill_takes_days_in_place_of_since():
    assert validate_request("backfill", symbol="BTC/USD", days=30).scope() == {"symbol": "BTC/USD", "days": 30}
    with pytest.raises(InvalidRunRequest) as refused:
        validate_request("backfill", symbol="BTC/USD")
    assert refused.value.parameter == "since" and "days=N" in str(refused.value)


@pytest.mark.parametrize(("extra", "parameter"), [
    ({"since": "2024-01-01", "days": 3}, "days"), ({"days": 3, "bars": 10}, "bars"),
    ({"days": 3, "until": "2024-01-01"}, "until"), ({"days": 0}, "days"), ({"hours": 87_841}, "hours"),
    ({"bars": True}, "bars"), ({"days": "3"}, "days")])
def test_one_start_only_and_whole_numbers_in_bounds(extra, parameter):
    with pytest.raises(InvalidRunRequest) as refused:
        validate_request("backfill", symbol="BTC/USD", **extra)
    assert refused.value.parameter == parameter
