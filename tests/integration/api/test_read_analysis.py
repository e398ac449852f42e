"""GET /api/indicators, /api/patterns and /api/levels: what the indicator stage stored, filtered like candles."""

from __future__ import annotations

import pytest

from services.api.app import create_app
from services.core.store.analysis_reads import INDICATOR_FIELDS
from tests.integration.api.analysis_rows import (
    add_indicator_bars,
    add_zigzag_candles,
    detect_levels,
    detect_patterns,
    indicator_value,
    stored_rows,
)
from tests.integration.api.conftest import TOKEN
from tests.integration.api.rows import add_candles, add_instrument, hour

pytestmark = pytest.mark.integration

ROUTES = ("/api/indicators", "/api/patterns", "/api/levels")


def test_indicator_values_are_the_newest_limit_bars_oldest_first_as_stored(client, engine):
    add_indicator_bars(engine, add_instrument(engine), 10, open_last=True, warmup=8)
    body = client.get("/api/indicators?symbol=BTC/USD&limit=3").get_json()
    assert (body["exchange"], body["symbol"], body["timeframe"], body["count"]) == ("kraken", "BTC/USD", "1h", 3)
    assert body["columns"] == list(INDICATOR_FIELDS)
    bars = body["indicators"]
    assert [bar["ts"] for bar in bars] == [hour(n).isoformat() for n in (7, 8, 9)]
    assert list(bars[0]) == ["ts", *INDICATOR_FIELDS, "is_closed"]
    assert bars[1]["rsi"] == indicator_value(8, "rsi") and bars[2]["channel_low"] == indicator_value(9, "channel_low")
    assert [bar["sma_slow"] for bar in bars] == [None, indicator_value(8, "sma_slow"), indicator_value(9, "sma_slow")]
    assert [bar["regime"] for bar in bars] == ["range", None, "trend_up"]  # bar n: _REGIMES[n % 3]
    assert [bar["is_closed"] for bar in bars] == [True, True, False]


def test_an_infinite_indicator_value_is_null_not_invalid_json(client, engine):
    add_indicator_bars(engine, add_instrument(engine), 3)
    response = client.get("/api/indicators?symbol=BTC/USD&columns=atr")
    assert "Infinity" not in response.get_data(as_text=True)
    assert [bar["atr"] for bar in response.get_json()["indicators"]] == [
        indicator_value(0, "atr"), None, indicator_value(2, "atr")]


def test_columns_selects_indicator_columns_in_the_order_given(client, engine):
    add_indicator_bars(engine, add_instrument(engine), 4)
    body = client.get("/api/indicators?symbol=BTC/USD&columns=adx,rsi,regime").get_json()
    assert body["columns"] == ["adx", "rsi", "regime"]
    assert [list(bar) for bar in body["indicators"]] == [["ts", "adx", "rsi", "regime", "is_closed"]] * 4
    assert [bar["adx"] for bar in body["indicators"]] == [indicator_value(n, "adx") for n in range(4)]


def test_indicators_default_to_the_first_timeframe_and_five_hundred_bars(client, engine):
    instrument = add_instrument(engine, timeframes=("1h", "4h"))
    add_indicator_bars(engine, instrument, 600)
    add_indicator_bars(engine, instrument, 2, timeframe="4h")
    body = client.get("/api/indicators?symbol=BTC/USD&columns=rsi").get_json()
    assert body["timeframe"] == "1h" and body["count"] == 500
    assert body["indicators"][-1]["rsi"] == indicator_value(599, "rsi")
    assert client.get("/api/indicators?symbol=BTC/USD&timeframe=4h").get_json()["count"] == 2


def test_indicators_are_cut_to_since_inclusive_and_until_exclusive(client, engine):
    add_indicator_bars(engine, add_instrument(engine), 10)
    body = client.get("/api/indicators?symbol=BTC/USD&columns=rsi&since=2024-01-01T02:00Z&until=2024-01-01T05:00Z")
    assert [bar["rsi"] for bar in body.get_json()["indicators"]] == [indicator_value(n, "rsi") for n in (2, 3, 4)]


def test_patterns_are_what_the_pattern_step_stored_oldest_first(client, engine):
    instrument = add_instrument(engine)
    add_candles(engine, instrument, 12)  # open == close on every bar: a doji each time
    assert detect_patterns(engine, instrument)["patterns"] == 12
    stored = stored_rows(engine, "SELECT ts, pattern, direction, strength FROM patterns ORDER BY ts")
    body = client.get("/api/patterns?symbol=BTC/USD&limit=4").get_json()
    assert body["count"] == 4 and body["timeframe"] == "1h"
    assert [(p["ts"], p["pattern"], p["direction"], p["strength"]) for p in body["patterns"]] == [
        (row["ts"].isoformat(), row["pattern"], row["direction"], row["strength"]) for row in stored[-4:]]
    assert body["patterns"][0]["detected_at"].endswith("+00:00")
    window = client.get("/api/patterns?symbol=BTC/USD&since=2024-01-01T03:00Z&until=2024-01-01T06:00Z").get_json()
    assert [p["ts"] for p in window["patterns"]] == [hour(n).isoformat() for n in (3, 4, 5)]


def test_patterns_of_a_timeframe_stay_in_it(client, engine):
    instrument = add_instrument(engine, timeframes=("1h", "4h"))
    add_candles(engine, instrument, 5, timeframe="4h")
    detect_patterns(engine, instrument, "4h")
    assert client.get("/api/patterns?symbol=BTC/USD").get_json()["count"] == 0
    assert client.get("/api/patterns?symbol=BTC/USD&timeframe=4h").get_json()["count"] == 5


def test_levels_are_what_the_level_step_stored_strongest_first(client, engine):
    instrument = add_instrument(engine)
    add_zigzag_candles(engine, instrument, 100)
    found = detect_levels(engine, instrument)["levels"]
    assert found >= 4  # supports and resistances, so ordering and limits are not vacuous
    stored = stored_rows(engine, "SELECT kind, price, touches, strength, first_ts, last_ts FROM levels "
                                 "ORDER BY strength DESC, price")
    body = client.get("/api/levels?symbol=BTC/USD").get_json()
    assert body["count"] == found
    assert [(lv["kind"], lv["price"], lv["touches"], lv["strength"], lv["first_ts"], lv["last_ts"])
            for lv in body["levels"]] == [(row["kind"], row["price"], row["touches"], row["strength"],
                                           row["first_ts"].isoformat(), row["last_ts"].isoformat()) for row in stored]
    assert {lv["kind"] for lv in body["levels"]} == {"support", "resistance"}
    strongest = client.get("/api/levels?symbol=BTC/USD&limit=2").get_json()["levels"]
    assert strongest == body["levels"][:2]


def test_levels_are_narrowed_by_their_last_touch(client, engine):
    instrument = add_instrument(engine)
    add_zigzag_candles(engine, instrument, 100)
    detect_levels(engine, instrument)
    every = client.get("/api/levels?symbol=BTC/USD").get_json()["levels"]
    cut = sorted(lv["last_ts"] for lv in every)[len(every) // 2]
    recent = client.get("/api/levels", query_string={"symbol": "BTC/USD", "since": cut}).get_json()["levels"]
    older = client.get("/api/levels", query_string={"symbol": "BTC/USD", "until": cut}).get_json()["levels"]
    assert recent and older
    assert all(lv["last_ts"] >= cut for lv in recent) and all(lv["last_ts"] < cut for lv in older)
    assert len(recent) + len(older) == len(every)


@pytest.mark.parametrize("route", ROUTES)
def test_an_unknown_instrument_is_not_found_naming_symbol(client, engine, route):
    response = client.get(f"{route}?symbol=DOGE/USD")
    assert response.status_code == 404
    assert response.get_json()["parameter"] == "symbol" and "DOGE/USD" in response.get_json()["message"]


@pytest.mark.parametrize("route", ROUTES)
def test_another_exchange_is_asked_for_by_name(client, engine, route):
    add_instrument(engine, exchange="binance")
    assert client.get(f"{route}?symbol=BTC/USD").status_code == 404
    assert client.get(f"{route}?symbol=BTC/USD&exchange=binance").get_json()["count"] == 0


@pytest.mark.parametrize(("url", "parameter"), [
    *((route, "symbol") for route in ROUTES),
    *((f"{route}?symbol=BTC/USD&timeframe=hourly", "timeframe") for route in ROUTES),
    *((f"{route}?symbol=BTC/USD&since=2024-02-01&until=2024-01-01", "until") for route in ROUTES),
    *((f"{route}?symbol=BTC/USD&limit=0", "limit") for route in ROUTES),
    ("/api/indicators?symbol=BTC/USD&limit=5001", "limit"),
    ("/api/patterns?symbol=BTC/USD&limit=5001", "limit"),
    ("/api/levels?symbol=BTC/USD&limit=1001", "limit"),
    ("/api/patterns?symbol=BTC/USD&columns=rsi", "columns"),  # columns are the indicator route's only
    ("/api/levels?symbol=BTC/USD&kind=support", "kind"),
])
def test_a_malformed_filter_is_refused_naming_it(client, engine, url, parameter):
    add_instrument(engine)
    response = client.get(url)
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter


@pytest.mark.parametrize(("columns", "says"), [
    ("rsi,volume", "unknown columns 'volume'; valid: " + ", ".join(INDICATOR_FIELDS)),
    ("", "columns is empty; give one or more of: " + ", ".join(INDICATOR_FIELDS)),
    ("rsi,", "unknown columns ''"),
    ("rsi,adx,rsi", "columns names 'rsi' more than once; give each once"),
    ("RSI", "unknown columns 'RSI'"),
])
def test_bad_columns_are_refused_with_the_valid_names(client, engine, columns, says):
    add_indicator_bars(engine, add_instrument(engine), 2)
    response = client.get("/api/indicators", query_string={"symbol": "BTC/USD", "columns": columns})
    assert response.status_code == 400
    assert response.get_json()["parameter"] == "columns" and says in response.get_json()["message"]


def test_columns_given_twice_is_refused_not_half_applied(client, engine):
    add_indicator_bars(engine, add_instrument(engine), 2)
    response = client.get("/api/indicators?symbol=BTC/USD&columns=rsi&columns=adx")
    assert response.status_code == 400
    assert response.get_json() == {"status": "error", "parameter": "columns",
                                   "message": "parameter 'columns' given 2 times; give it once"}


@pytest.mark.parametrize("route", ROUTES)
def test_closed_reads_refuse_an_anonymous_reader(api_settings, celery, broker, engine, route):
    add_instrument(engine)
    settings = api_settings.model_copy(update={"api_read_access": "token", "api_read_token": "reader-7c2e"})
    closed = create_app(settings=settings, celery=celery, redis_client=broker, engine=engine).test_client()
    anonymous = closed.get(f"{route}?symbol=BTC/USD")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    for token in (TOKEN, "reader-7c2e"):
        assert closed.get(f"{route}?symbol=BTC/USD", headers={"Authorization": f"Bearer {token}"}).status_code == 200

