"""The universe over HTTP: GET/POST/PATCH /api/instruments, GET /api/markets, and the trigger's universe rule."""

from __future__ import annotations

import pytest

from services.core.store.markets import record_markets
from tests.integration.api.conftest import AUTH
from tests.integration.api.rows import add_instrument

pytestmark = pytest.mark.integration


def _market(symbol: str, market_type: str = "spot") -> dict:
    base, quote = symbol.split("/")
    return {"symbol": symbol, "market_id": symbol.replace("/", ""), "base": base, "quote": quote,
            "type": market_type, "active": True, "precision": {"price": 0.01, "amount": 0.0001}}


@pytest.fixture()
def markets(engine):
    """kraken's market list as a sync would have recorded it."""
    with engine.begin() as conn:
        record_markets(conn, "kraken", [_market(s) for s in ("BTC/USD", "ETH/USD", "SOL/USD", "SOL/EUR")])


def test_instruments_are_filtered_by_active_exchange_and_quote(client, engine):
    add_instrument(engine, "BTC/USD")
    add_instrument(engine, "ETH/EUR")
    add_instrument(engine, "SOL/USD", active=False)
    add_instrument(engine, "BTC/USD", exchange="binance")

    def symbols(query):
        return [(i["exchange"], i["symbol"]) for i in client.get(f"/api/instruments?{query}").get_json()["instruments"]]

    assert symbols("quote=USD&active=true") == [("binance", "BTC/USD"), ("kraken", "BTC/USD")]
    assert symbols("exchange=kraken&active=false") == [("kraken", "SOL/USD")]
    assert client.get("/api/instruments?quote=usd").status_code == 400


def test_adding_a_listed_market_makes_it_an_active_instrument_with_its_timeframes(client, markets):
    response = client.post("/api/instruments", json={"symbol": "SOL/USD", "timeframes": ["4h", "1h", "4h"]},
                           headers=AUTH)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["symbol"], body["exchange"], body["timeframes"], body["active"], body["source"]) == (
        "SOL/USD", "kraken", ["4h", "1h"], True, "api")
    assert body["added_at"].endswith("+00:00") and body["retired_at"] is None
    default = client.post("/api/instruments", json={"symbol": "ETH/USD"}, headers=AUTH).get_json()
    assert default["timeframes"] == ["1h", "4h"]  # TIMEFRAMES
    again = client.post("/api/instruments", json={"symbol": "SOL/USD"}, headers=AUTH)
    assert again.status_code == 409 and "already in the universe" in again.get_json()["message"]


def test_a_market_the_exchange_does_not_list_is_refused_naming_symbol(client, markets):
    response = client.post("/api/instruments", json={"symbol": "DOGE/USD"}, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == "symbol" and "does not list DOGE/USD" in response.get_json()["message"]


def test_adding_before_any_market_sync_says_to_run_it(client):
    response = client.post("/api/instruments", json={"symbol": "SOL/USD"}, headers=AUTH)
    assert response.status_code == 409 and "markets-sync-daily" in response.get_json()["message"]


@pytest.mark.parametrize(("body", "parameter"), [
    ({}, "symbol"), ({"symbol": "solusd"}, "symbol"), ({"symbol": "SOL/USD", "timeframes": []}, "timeframes"),
    ({"symbol": "SOL/USD", "timeframes": ["2w"]}, "timeframes"), ({"symbol": "SOL/USD", "timeframes": "1h"},
                                                                   "timeframes"),
    ({"symbol": "SOL/USD", "exchange": "binance"}, "exchange"), ({"symbol": None}, "symbol"), (["SOL/USD"], "body")])
def test_a_bad_addition_is_a_400_naming_the_field_and_adds_nothing(client, markets, body, parameter):
    response = client.post("/api/instruments", json=body, headers=AUTH)
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter, response.get_json()
    assert client.get("/api/instruments").get_json()["count"] == 0


def test_changing_the_universe_needs_the_token(client, markets):
    assert client.post("/api/instruments", json={"symbol": "SOL/USD"}).status_code == 401
    assert client.patch("/api/instruments/kraken/SOL/USD", json={"active": False}).status_code == 401


def test_retiring_stamps_the_time_and_re_activating_clears_it(client, engine):
    add_instrument(engine, "BTC/USD")
    retired = client.patch("/api/instruments/kraken/BTC/USD", json={"active": False}, headers=AUTH)
    assert retired.status_code == 200 and retired.get_json()["active"] is False
    assert retired.get_json()["retired_at"] is not None
    back = client.patch("/api/instruments/kraken/BTC/USD", json={"active": True, "timeframes": ["1d"]},
                        headers=AUTH).get_json()
    assert (back["active"], back["retired_at"], back["timeframes"]) == (True, None, ["1d"])


@pytest.mark.parametrize(("body", "status", "parameter"), [
    ({}, 400, "body"), ({"active": "no"}, 400, "active"), ({"timeframes": ["1x"]}, 400, "timeframes"),
    ({"source": "api"}, 400, "source"), ({"active": None}, 400, "active")])
def test_a_bad_change_is_refused_naming_the_field(client, engine, body, status, parameter):
    add_instrument(engine, "BTC/USD")
    response = client.patch("/api/instruments/kraken/BTC/USD", json=body, headers=AUTH)
    assert (response.status_code, response.get_json()["parameter"]) == (status, parameter)


def test_changing_an_unknown_instrument_is_a_404(client):
    response = client.patch("/api/instruments/kraken/ZZZ/USD", json={"active": False}, headers=AUTH)
    assert response.status_code == 404 and response.get_json()["parameter"] == "symbol"


def test_a_delisted_instrument_comes_back_only_once_its_market_is_listed_again(client, engine, markets):
    from services.core.store.instruments import mark_market_gone

    add_instrument(engine, "ADA/USD")
    with engine.begin() as conn:
        assert mark_market_gone(conn, "kraken", ["ADA/USD"]) == ["ADA/USD"]
    refused = client.patch("/api/instruments/kraken/ADA/USD", json={"active": True}, headers=AUTH)
    assert refused.status_code == 400 and "does not list ADA/USD" in refused.get_json()["message"]
    with engine.begin() as conn:
        record_markets(conn, "kraken", [_market("ADA/USD")])
    back = client.patch("/api/instruments/kraken/ADA/USD", json={"active": True}, headers=AUTH).get_json()
    assert back["active"] is True and back["market_gone_at"] is None


def test_markets_are_listed_with_filters_and_a_limit(client, markets):
    body = client.get("/api/markets?quote=USD").get_json()
    assert (body["exchange"], body["count"], body["total"]) == ("kraken", 3, 3)
    assert [m["symbol"] for m in body["markets"]] == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert body["markets"][0]["precision"] == {"price": 0.01, "amount": 0.0001}
    limited = client.get("/api/markets?limit=1").get_json()
    assert (limited["count"], limited["total"]) == (1, 4)
    assert client.get("/api/markets?listed=false").get_json()["count"] == 0
    assert client.get("/api/markets?exchange=binance").get_json()["count"] == 0


def test_a_run_on_a_symbol_outside_the_universe_is_refused_saying_how_to_add_it(client, broker, engine):
    add_instrument(engine, "BTC/USD")
    response = client.post("/api/manual-update/?task=ohlc&symbol=BTC/USD,SOL/USD", headers=AUTH)
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == "symbol" and "SOL/USD on kraken is not in the universe" in body["message"]
    assert "POST /api/instruments" in body["message"] and "add=true" in body["message"]
    assert broker.llen("pipeline") == 0 and not broker.keys("*run-lock*")


def test_a_run_on_a_timeframe_the_instrument_does_not_keep_is_refused_naming_timeframe(client, engine):
    add_instrument(engine, "BTC/USD")
    response = client.post("/api/manual-update/?task=ohlc&symbol=BTC/USD&timeframe=1h,4h", headers=AUTH)
    assert response.status_code == 400 and response.get_json()["parameter"] == "timeframe"


def test_add_true_adds_the_missing_listed_markets_and_queues_the_run(client, engine, markets):
    add_instrument(engine, "BTC/USD")
    response = client.post("/api/manual-update/?task=ohlc&symbol=SOL/USD,BTC/USD&add=true", headers=AUTH)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["scope"] == {"symbol": "BTC/USD,SOL/USD"}
    universe = {i["symbol"]: i for i in client.get("/api/instruments").get_json()["instruments"]}
    assert universe["SOL/USD"]["source"] == "api" and universe["SOL/USD"]["timeframes"] == ["1h", "4h"]
    unlisted = client.post("/api/manual-update/?task=ohlc&symbol=DOGE/USD&add=true", headers=AUTH)
    assert unlisted.status_code == 400 and "does not list DOGE/USD" in unlisted.get_json()["message"]
