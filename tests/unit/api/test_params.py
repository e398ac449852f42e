"""Parsing query strings with the routes' parameter models: typed values out, a clear 400 naming the culprit."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
from pydantic import model_validator
from werkzeug.datastructures import MultiDict

from services.api.errors import ApiError
from services.api.query import QueryModel, parse_query
from services.api.routes.params import (
    CandlesQuery,
    InstrumentsQuery,
    RunsQuery,
    RunStatusQuery,
    SignalsQuery,
    TriggerQuery,
)
from services.core.pipeline.runs import InvalidRunRequest

MODELS = (TriggerQuery, RunStatusQuery, InstrumentsQuery, CandlesQuery, SignalsQuery, RunsQuery)
# Hostile or careless input: every value either parses or is refused as a 400, nothing else escapes.
_GARBAGE = ["", " ", "\x00", "\n", "\udcff", "'; --", "../..", "\u20ac", "1e3", "-0", "9" * 30, "1.0", "+5",
            "0001-01-01T00:00+01:00", "9999-12-31T23:59-05:00", "x" * 5000, "null", "[]", "{}", "TRUE", "BTC/USD"]


def parse(model: type[QueryModel], query: str) -> QueryModel:
    return parse_query(model, MultiDict(parse_qsl(query, keep_blank_values=True)))


def refusal(model: type[QueryModel], query: str | dict[str, str]) -> ApiError:
    """The 400 parsing `query` (a query string, or already decoded values) must end in."""
    with pytest.raises(ApiError) as caught:
        parse_query(model, MultiDict(query)) if isinstance(query, dict) else parse(model, query)
    assert caught.value.status == 400
    return caught.value


def test_values_arrive_typed():
    candles = parse(CandlesQuery, "symbol=BTC/USD&since=2024-01-31T14:00%2B02:00&until=1706716800000&limit=7")
    assert candles.since == datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert candles.until == datetime(2024, 1, 31, 16, tzinfo=UTC)
    assert candles.limit == 7 and candles.timeframe is None and candles.exchange is None
    assert parse(InstrumentsQuery, "active=False").active is False
    assert parse(RunsQuery, "state=partial").state == "PARTIAL"


def test_an_absent_limit_takes_the_routes_default():
    assert (parse(CandlesQuery, "symbol=BTC/USD").limit, parse(SignalsQuery, "").limit, parse(RunsQuery, "").limit) \
        == (500, 100, 50)


@pytest.mark.parametrize(("model", "query", "parameter"), [
    (CandlesQuery, "", "symbol"),
    (CandlesQuery, "symbol=BTCUSD", "symbol"),
    (CandlesQuery, "symbol=xBTC/USDx", "symbol"),  # the pattern is anchored at both ends
    (CandlesQuery, "symbol=BTC/USD&timeframe=hourly", "timeframe"),
    (CandlesQuery, "symbol=BTC/USD&timeframe=1w", "timeframe"),
    (CandlesQuery, "symbol=BTC/USD&since=last+week", "since"),
    (CandlesQuery, "symbol=BTC/USD&until=2024-02-30", "until"),
    (CandlesQuery, "symbol=BTC/USD&since=2024-02-01&until=2024-01-01", "until"),
    (CandlesQuery, "symbol=BTC/USD&since=2024-01-01&until=2024-01-01", "until"),
    (CandlesQuery, "symbol=BTC/USD&exchange=kra+ken", "exchange"),
    (CandlesQuery, "symbol=BTC/USD&exchange=" + "k" * 65, "exchange"),
    (SignalsQuery, "strategy=drop+table", "strategy"),
    (SignalsQuery, "since=0001-01-01T00:00%2B01:00", "since"),
    (SignalsQuery, "since=99999999999999999999", "since"),
    (RunsQuery, "state=DONE", "state"),
    (RunsQuery, "task=everything", "task"),
    (InstrumentsQuery, "active=maybe", "active"),
    (RunStatusQuery, "", "task_id"),
    (RunStatusQuery, "task_id=a%20b", "task_id"),
    (TriggerQuery, "symbol=BTC/USD", "task"),
])
def test_a_malformed_value_is_refused_naming_its_parameter(model, query, parameter):
    error = refusal(model, query)
    assert error.parameter == parameter and error.message


@pytest.mark.parametrize("value", ["0", "5001", "-1", "abc", "1.0", " 5", "5 ", "+5", "1_000", "1e3", "", "9" * 30])
def test_a_limit_is_plain_digits_within_the_bounds(value):
    error = refusal(CandlesQuery, {"symbol": "BTC/USD", "limit": value})
    assert error.message == f"limit must be an integer from 1 to 5000, got {value!r}"


@pytest.mark.parametrize("value", ["yes", "no", "1", "0", "on", "t", ""])
def test_active_is_true_or_false_and_nothing_looser(value):
    assert refusal(InstrumentsQuery, {"active": value}).message == f"active must be true or false, got {value!r}"


def test_unknown_repeated_and_control_character_parameters_are_refused_before_any_value():
    # The typo is what gets reported, not the required symbol it failed to give.
    assert refusal(CandlesQuery, "symbl=BTC/USD").parameter == "symbl"
    assert refusal(CandlesQuery, "symbol=BTC/USD&symbol=ETH/USD").message == \
        "parameter 'symbol' given 2 times; give it once"
    assert refusal(CandlesQuery, "symbol=BTC/USD%0A").message == "parameter 'symbol' contains control characters"


def test_a_bad_value_is_quoted_back_short():
    error = refusal(SignalsQuery, "strategy=" + "x" * 5000)
    assert len(error.message) < 200 and "x" * 40 in error.message


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_no_garbage_in_any_parameter_escapes_as_anything_but_a_400(model):
    for name in model.model_fields:
        for garbage in _GARBAGE:
            given = MultiDict({"task": "all", "symbol": "BTC/USD", "task_id": "x"})
            given = MultiDict({key: value for key, value in given.items() if key in model.model_fields})
            given[name] = garbage
            try:
                parse_query(model, given)
            except ApiError as error:
                assert error.status == 400 and error.parameter == name, (name, garbage, error.message)
                assert "pydantic" not in error.message and len(error.message) < 300, error.message


def test_the_trigger_leaves_its_values_to_cores_run_validator():
    # The scope keeps the caller's text (it is the de-duplication key), and core names the bad parameter.
    request = parse(TriggerQuery, "task=backfill&symbol=BTC/USD&since=2024-01-01").run_request()
    assert (request.kind, request.symbol, request.since) == ("backfill", "BTC/USD", "2024-01-01T00:00:00Z")
    with pytest.raises(InvalidRunRequest) as caught:
        parse(TriggerQuery, "task=backfill&symbol=BTC/USD").run_request()
    assert caught.value.parameter == "since"
    with pytest.raises(InvalidRunRequest) as caught:
        parse(TriggerQuery, "task=everything").run_request()
    assert caught.value.parameter == "task"


class _Probe(QueryModel):
    """A model using what no route does yet, to pin the fallbacks of the error mapping."""

    ratio: float | None = None
    low: int | None = None
    high: int | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Probe:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


def test_an_error_without_its_own_wording_still_names_the_parameter_plainly():
    error = refusal(_Probe, "ratio=lots")
    assert error.parameter == "ratio"
    assert error.message.startswith("parameter 'ratio': ") and "valid number" in error.message
    assert refusal(_Probe, "low=x").message.startswith("parameter 'low': ")  # no bounds to quote


def test_an_error_of_the_whole_query_names_no_parameter():
    error = refusal(_Probe, "low=5&high=1")
    assert error.parameter is None and "low must not exceed high" in error.message


def test_a_stock_venue_and_its_ticker_parse_and_a_ticker_alone_is_read_on_the_configured_exchange():
    candles = parse(CandlesQuery, "exchange=XNYS&symbol=BRK.B")
    assert (candles.exchange, candles.symbol) == ("XNYS", "BRK.B")
    assert parse(SignalsQuery, "exchange=XSHG&symbol=600519").symbol == "600519"
    error = refusal(CandlesQuery, "symbol=MSFT")  # the configured exchange is a ccxt one
    assert error.parameter == "symbol" and "BASE/QUOTE" in str(error)


@pytest.mark.parametrize(("query", "parameter", "says"), [
    ("exchange=NYSE&symbol=MSFT", "exchange", "nor a MIC"),
    ("exchange=xnys&symbol=MSFT", "exchange", "nor a MIC"),
    ("exchange=XNYS&symbol=BTC/USD", "symbol", "a ticker"),
    ("exchange=XNYS&symbol=MS..FT", "symbol", "ticker"),
])
def test_an_unknown_exchange_or_a_symbol_of_the_other_kind_is_a_400_naming_it(query, parameter, says):
    for model in (CandlesQuery, SignalsQuery):
        error = refusal(model, query)
        assert error.parameter == parameter and says in str(error), (model, str(error))
