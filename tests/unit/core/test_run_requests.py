"""validate_request: each refusal names its parameter, and the requests it accepts come back as asked."""

from __future__ import annotations

import pytest

from services.core.pipeline.runs import KINDS, InvalidRunRequest, RunRequest, validate_request


def refusal(kind: str | None, **params: str) -> InvalidRunRequest:
    with pytest.raises(InvalidRunRequest) as caught:
        validate_request(kind, **params)
    return caught.value


# --- refusals, one per rule ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["foo", "", "ALL", None])
def test_an_unknown_kind_is_refused_as_the_task_parameter_listing_the_valid_ones(kind):
    error = refusal(kind)
    assert error.parameter == "task"
    assert str(error).endswith("valid types: " + ", ".join(KINDS))


@pytest.mark.parametrize("symbol", ["BTCUSD", "btc/usd", "BTC/", "B/USD", "BTC/USD/EUR", "BTC-USD"])
def test_a_malformed_symbol_is_refused(symbol):
    error = refusal("all", symbol=symbol)
    assert error.parameter == "symbol" and repr(symbol) in str(error)


@pytest.mark.parametrize("timeframe", ["1x", "0h", "h", "60", "1w", "1M"])
def test_a_malformed_or_weekly_or_monthly_timeframe_is_refused(timeframe):
    assert refusal("all", timeframe=timeframe).parameter == "timeframe"


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "1969-12-31", "10000-01-01"])
def test_a_malformed_or_out_of_range_instant_is_refused(field, value):
    other = {"since": "2024-01-01"} if field == "until" else {}
    assert refusal("backfill", symbol="BTC/USD", **other, **{field: value}).parameter == field


@pytest.mark.parametrize("kind", ["ohlc", "levels"])
def test_a_kind_without_a_range_refuses_since(kind):
    error = refusal(kind, since="2024-01-01")
    assert error.parameter == "since" and "takes no range" in str(error)


@pytest.mark.parametrize("kind", ["all", "indicators", "signals"])
def test_a_kind_that_takes_only_since_refuses_until(kind):
    error = refusal(kind, since="2024-01-01", until="2024-02-01")
    assert error.parameter == "until" and "takes since" in str(error)


def test_a_backfill_without_a_symbol_is_refused_asking_for_one():
    error = refusal("backfill", since="2024-01-01")
    assert error.parameter == "symbol" and "symbol=BASE/QUOTE" in str(error)


def test_a_backfill_without_since_is_refused_asking_for_a_date():
    error = refusal("backfill", symbol="BTC/USD")
    assert error.parameter == "since" and "since=<ISO date>" in str(error)


@pytest.mark.parametrize("until", ["2024-01-01", "2023-12-31", "2024-01-01T00:00:00Z"])
def test_an_until_not_after_since_is_refused(until):
    error = refusal("backfill", symbol="BTC/USD", since="2024-01-01", until=until)
    assert error.parameter == "until" and str(error) == "until must be after since"


def test_the_first_bad_parameter_is_the_one_named():
    assert refusal("foo", symbol="bad", timeframe="bad").parameter == "task"
    assert refusal("all", symbol="bad", timeframe="bad").parameter == "symbol"
    assert refusal("backfill", timeframe="bad", since="bad").parameter == "timeframe"


def test_a_refusal_is_a_value_error():
    assert isinstance(refusal("foo"), ValueError)


# --- accepted requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "backfill"])
def test_every_kind_but_backfill_runs_with_no_parameters_over_everything(kind):
    request = validate_request(kind)
    assert request == RunRequest(kind)
    assert request.scope() == {}


def test_a_run_narrowed_to_one_instrument_keeps_its_scope():
    request = validate_request("all", symbol="ETH/USD", timeframe="4h")
    assert request.scope() == {"symbol": "ETH/USD", "timeframe": "4h"}


@pytest.mark.parametrize("kind", ["all", "indicators", "ema", "regime", "patterns", "signals"])
def test_a_kind_that_recomputes_from_a_date_accepts_since(kind):
    assert validate_request(kind, since="2024-01-01").since == "2024-01-01T00:00:00Z"


def test_a_full_backfill_request_comes_back_with_its_instants_in_utc():
    request = validate_request("backfill", symbol="BTC/USD", timeframe="1h", since="2024-01-01",
                               until="2024-02-01T00:00:00+02:00")
    assert request == RunRequest("backfill", "BTC/USD", "1h", "2024-01-01T00:00:00Z", "2024-01-31T22:00:00Z")
    assert request.scope() == {"symbol": "BTC/USD", "timeframe": "1h", "since": "2024-01-01T00:00:00Z",
                               "until": "2024-01-31T22:00:00Z"}


def test_a_backfill_accepts_epoch_milliseconds_and_an_open_end():
    request = validate_request("backfill", symbol="BTC/USD", since="1704067200000")
    assert (request.since, request.until) == ("2024-01-01T00:00:00Z", None)


def test_an_until_one_millisecond_after_since_is_accepted():
    request = validate_request("backfill", symbol="BTC/USD", since="1704067200000", until="1704067200001")
    assert request.until == "2024-01-01T00:00:00.001Z"


def test_identical_requests_share_a_dedup_key_and_another_scope_does_not():
    first, again = validate_request("all", symbol="BTC/USD"), validate_request("all", symbol="BTC/USD")
    assert first.dedup_key() == again.dedup_key()
    assert first.dedup_key() != validate_request("all", symbol="ETH/USD").dedup_key()
    assert first.dedup_key() != validate_request("ohlc", symbol="BTC/USD").dedup_key()


@pytest.mark.parametrize("spelling", ["2024-01-01", "2024-01-01T00:00Z", "2024-01-01T02:00:00+02:00", "1704067200000"])
def test_every_spelling_of_one_instant_is_one_run_for_de_duplication(spelling):
    reference = validate_request("backfill", symbol="BTC/USD", since="2024-01-01T00:00:00Z")
    assert validate_request("backfill", symbol="BTC/USD", since=spelling).dedup_key() == reference.dedup_key()


# --- exchange: a stock venue's instruments, or the configured EXCHANGE's ---------------------------


@pytest.fixture()
def on_kraken(monkeypatch):
    from services.core.config import get_settings

    monkeypatch.setenv("EXCHANGE", "kraken")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("kind", ["all", "indicators", "signals", "patterns"])
def test_a_run_on_a_stock_venue_names_it_in_its_scope(on_kraken, kind):
    request = validate_request(kind, exchange="XNYS", symbol="MSFT,BRK.B")
    assert request.scope() == {"exchange": "XNYS", "symbol": "BRK.B,MSFT"}


def test_naming_the_configured_exchange_is_the_same_run_as_naming_none(on_kraken):
    assert validate_request("all", exchange="kraken", symbol="BTC/USD") == validate_request("all", symbol="BTC/USD")
    assert "exchange" not in validate_request("all", exchange="kraken").scope()


@pytest.mark.parametrize(("kind", "exchange", "says"), [
    ("ohlc", "XNYS", "XNYS is a stock venue, fed by imports"),
    ("backfill", "XSHG", "XSHG is a stock venue, fed by imports"),
    ("ohlc", "binance", "this deployment does not fetch from binance"),
])
def test_a_fetch_from_anything_but_the_configured_exchange_is_refused_saying_why(on_kraken, kind, exchange, says):
    caught = refusal(kind, exchange=exchange, symbol="MSFT" if exchange.isupper() else "BTC/USD",
                     since="2024-01-01")
    assert caught.parameter == "exchange"
    assert says in str(caught) and "fetches from the configured exchange (kraken)" in str(caught)


@pytest.mark.parametrize("exchange", ["NYSE", "xnys", "nowhere", "24/7"])
def test_an_unknown_exchange_is_refused_naming_both_kinds(on_kraken, exchange):
    caught = refusal("all", exchange=exchange)
    assert caught.parameter == "exchange" and "nor a MIC" in str(caught)


@pytest.mark.parametrize(("exchange", "symbol", "expected"), [
    ("XNYS", "BTC/USD", "a ticker"), (None, "MSFT", "BASE/QUOTE"), ("kraken", "600519", "BASE/QUOTE")])
def test_a_symbol_must_be_of_its_exchanges_kind(on_kraken, exchange, symbol, expected):
    caught = refusal("all", exchange=exchange, symbol=symbol)
    assert caught.parameter == "symbol" and expected in str(caught)


def test_bars_on_a_stock_venue_is_refused_for_what_it_would_count(on_kraken):
    caught = refusal("indicators", exchange="XNYS", bars=20)
    assert caught.parameter == "bars" and "sessions" in str(caught)
    assert validate_request("indicators", exchange="XNYS", days=30).scope() == {"exchange": "XNYS", "days": 30}
