"""Fault rules: validation, matching, counting, and the replies they produce."""

from __future__ import annotations

import json

import pytest

from services.exchange_sim.faults import FaultPlan, RequestContext, error_reply, parse_rule

KLINES = "/api/v3/klines"


def klines(symbol="BTCUSD", interval="1h", first=None, last=None):
    return RequestContext(KLINES, symbol, interval, first, last)


def test_a_rule_with_times_fails_that_many_matching_requests_then_stops():
    plan = FaultPlan([{"kind": "http_429", "path": KLINES, "times": 2}])
    fired = [plan.request_fault(klines()) for _ in range(3)]
    assert [r is not None for r in fired] == [True, True, False]
    assert plan.request_fault(RequestContext("/api/v3/time")) is None


def test_after_lets_the_first_matching_requests_through():
    plan = FaultPlan([{"kind": "http_500", "after": 1, "times": 1}])
    assert [plan.request_fault(klines()) is not None for _ in range(3)] == [False, True, False]


def test_a_ccxt_symbol_in_a_rule_matches_the_binance_id_in_the_request():
    plan = FaultPlan([{"kind": "http_503", "symbol": "ETH/USD"}])
    assert plan.request_fault(klines("BTCUSD")) is None
    assert plan.request_fault(klines("ETHUSD")) is not None


def test_a_windowed_rule_fires_only_for_pages_overlapping_its_window():
    plan = FaultPlan([{"kind": "http_500", "start_ms": 1000, "end_ms": 2000}])
    assert plan.request_fault(klines(first=0, last=999)) is None
    assert plan.request_fault(klines(first=2000, last=3000)) is None
    assert plan.request_fault(klines(first=1500, last=2500)) is not None
    assert plan.request_fault(klines()) is None  # an empty page has no window


def test_gap_rules_hide_listed_candles_and_ranges():
    plan = FaultPlan([{"kind": "missing_candles", "ts": [10]},
                      {"kind": "missing_candles", "start_ms": 100, "end_ms": 200}])
    gaps = plan.gap_filter(klines())
    assert [t for t in (0, 10, 99, 100, 199, 200) if gaps(t)] == [10, 100, 199]


def test_a_gap_rule_with_times_heals_after_it_has_hidden_candles_that_often():
    plan = FaultPlan([{"kind": "missing_candles", "ts": [10], "times": 1}])
    first = plan.gap_filter(klines())
    assert first(5) is False and first.used == []
    assert first(10) is True
    plan.record_use(first.used)
    assert plan.gap_filter(klines())(10) is False


def test_after_on_a_data_rule_spares_the_first_responses_that_hold_its_candles():
    plan = FaultPlan([{"kind": "missing_candles", "ts": [10], "after": 1}])
    unrelated = plan.gap_filter(klines())
    assert unrelated(5) is False
    plan.record_use(unrelated.used)
    first = plan.gap_filter(klines())
    assert first(10) is False
    plan.record_use(first.used)
    assert plan.gap_filter(klines())(10) is True


@pytest.mark.parametrize("defect, check", [
    ("high_below_low", lambda row: float(row[2]) < float(row[3])),
    ("negative_price", lambda row: float(row[4]) < 0),
    ("zero_price", lambda row: float(row[4]) == 0),
    ("nan_price", lambda row: row[4] == "NaN"),
    ("negative_volume", lambda row: float(row[5]) < 0),
])
def test_bad_candle_rules_spoil_exactly_the_named_rows(defect, check):
    rows = [json.dumps([t, "10.00", "11.00", "9.00", "10.50", "3.0", t + 9, "30", 5, "1", "10", "0"])
            for t in (0, 10, 20)]
    plan = FaultPlan([{"kind": "bad_candle", "ts": [10], "defect": defect}])
    spoiled = plan.spoil(klines(), list(rows), [0, 10, 20], "0.01")
    assert check(json.loads(spoiled[1]))
    assert spoiled[0] == rows[0] and spoiled[2] == rows[2]


@pytest.mark.parametrize("raw, problem", [
    ({"kind": "http_999"}, "fault kind"),
    ({"kind": "http_429", "tims": 2}, "unknown fault rule keys"),
    ({"kind": "missing_candles"}, "needs 'ts'"),
    ({"kind": "bad_candle", "ts": [1], "defect": "ugly"}, "defect must be"),
])
def test_a_malformed_rule_is_refused_with_the_reason(raw, problem):
    with pytest.raises(ValueError, match=problem):
        parse_rule(raw)


def test_rate_limit_replies_carry_binance_code_and_retry_after():
    status, headers, body = error_reply(parse_rule({"kind": "http_429", "retry_after": 3}), "", 0)
    assert status == 429 and headers["Retry-After"] == "3"
    assert json.loads(body)["code"] == -1003


def test_a_malformed_reply_is_the_real_body_cut_short():
    normal = json.dumps([[1, "2"], [3, "4"]])
    status, _headers, body = error_reply(parse_rule({"kind": "malformed_json"}), normal, 0)
    assert status == 200 and normal.startswith(body) and len(body) < len(normal)
    with pytest.raises(ValueError):
        json.loads(body)


def test_describe_shows_only_options_of_the_rule_kind():
    plan = FaultPlan([{"kind": "http_429", "times": 1}, {"kind": "bad_candle", "ts": [5]}])
    rate_limit, bad = plan.describe()
    assert "retry_after" in rate_limit and "defect" not in rate_limit and "seconds" not in rate_limit
    assert bad["ts"] == [5] and "retry_after" not in bad
