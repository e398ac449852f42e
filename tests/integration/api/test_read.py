"""The read-only routes: instruments, candles, signals and runs, with validated filters."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.integration.api.rows import add_candles, add_instrument, add_run, add_signal, hour

pytestmark = pytest.mark.integration


def test_instruments_are_listed_by_exchange_and_symbol(client, engine):
    add_instrument(engine, "ETH/USD", timeframes=("1h", "4h"))
    add_instrument(engine, "BTC/USD", active=False)
    body = client.get("/api/instruments").get_json()
    assert body["count"] == 2
    assert [(i["symbol"], i["timeframes"], i["active"]) for i in body["instruments"]] == [
        ("BTC/USD", ["1h"], False), ("ETH/USD", ["1h", "4h"], True)]
    assert body["instruments"][0]["added_at"].endswith("+00:00")


def test_instruments_can_be_narrowed_to_the_active_ones(client, engine):
    add_instrument(engine, "ETH/USD")
    add_instrument(engine, "BTC/USD", active=False)
    body = client.get("/api/instruments?active=true").get_json()
    assert [i["symbol"] for i in body["instruments"]] == ["ETH/USD"]


def test_candles_are_the_newest_limit_bars_oldest_first_in_utc(client, engine):
    add_candles(engine, add_instrument(engine), 10, open_last=True)
    body = client.get("/api/candles?symbol=BTC/USD&limit=3").get_json()
    assert (body["symbol"], body["timeframe"], body["exchange"], body["count"]) == ("BTC/USD", "1h", "kraken", 3)
    assert [c["ts"] for c in body["candles"]] == [hour(n).isoformat() for n in (7, 8, 9)]
    assert body["candles"][0]["ts"] == "2024-01-01T07:00:00+00:00"
    assert [c["close"] for c in body["candles"]] == [107.0, 108.0, 109.0]
    assert [c["is_closed"] for c in body["candles"]] == [True, True, False]


def test_candles_default_to_the_first_configured_timeframe_and_five_hundred_bars(client, engine):
    instrument = add_instrument(engine, timeframes=("1h", "4h"))
    add_candles(engine, instrument, 3, timeframe="4h")
    add_candles(engine, instrument, 600, timeframe="1h")
    body = client.get("/api/candles?symbol=BTC/USD").get_json()
    assert body["timeframe"] == "1h" and body["count"] == 500
    assert body["candles"][-1]["close"] == 699.0
    assert client.get("/api/candles?symbol=BTC/USD&timeframe=4h").get_json()["count"] == 3


def test_candles_are_cut_to_since_inclusive_and_until_exclusive(client, engine):
    add_candles(engine, add_instrument(engine), 10)
    url = "/api/candles?symbol=BTC/USD&since=2024-01-01T02:00Z&until=2024-01-01T05:00:00%2B00:00"
    body = client.get(url).get_json()
    assert [c["close"] for c in body["candles"]] == [102.0, 103.0, 104.0]
    epoch_ms = int(hour(8).timestamp() * 1000)
    assert client.get(f"/api/candles?symbol=BTC/USD&since={epoch_ms}").get_json()["count"] == 2


def test_candles_of_an_unknown_symbol_are_not_found(client, engine):
    response = client.get("/api/candles?symbol=DOGE/USD")
    assert response.status_code == 404 and response.get_json()["parameter"] == "symbol"


def test_candles_of_another_exchange_are_asked_for_by_name(client, engine):
    add_candles(engine, add_instrument(engine, exchange="binance"), 2)
    assert client.get("/api/candles?symbol=BTC/USD").status_code == 404
    assert client.get("/api/candles?symbol=BTC/USD&exchange=binance").get_json()["count"] == 2


def test_signals_are_newest_first_and_filtered(client, engine):
    btc, eth = add_instrument(engine, "BTC/USD"), add_instrument(engine, "ETH/USD")
    add_signal(engine, btc, hour(1), strategy="rsi_mean_reversion")
    add_signal(engine, btc, hour(2), strategy="macd_cross_adx", side="sell")
    add_signal(engine, eth, hour(3), strategy="rsi_mean_reversion")
    add_signal(engine, btc, hour(4), strategy="rsi_mean_reversion", timeframe="4h")

    every = client.get("/api/signals").get_json()
    assert [s["ts"] for s in every["signals"]] == [hour(n).isoformat() for n in (4, 3, 2, 1)]
    first = every["signals"][-1]
    assert first == {"exchange": "kraken", "symbol": "BTC/USD", "timeframe": "1h", "ts": hour(1).isoformat(),
                     "strategy": "rsi_mean_reversion", "side": "buy", "strength": 0.5, "price": 123.5,
                     "inputs": {"rsi": 25.0}, "created_at": first["created_at"]}

    def times(query: str) -> list[str]:
        return [s["ts"] for s in client.get(f"/api/signals?{query}").get_json()["signals"]]

    assert times("symbol=BTC/USD&timeframe=1h") == [hour(2).isoformat(), hour(1).isoformat()]
    assert times("strategy=rsi_mean_reversion&timeframe=1h") == [hour(3).isoformat(), hour(1).isoformat()]
    assert times("since=2024-01-01T02:00Z&timeframe=1h") == [hour(3).isoformat(), hour(2).isoformat()]
    assert times("limit=1") == [hour(4).isoformat()]


def test_runs_are_newest_first_and_filtered_by_state_and_task(client, engine):
    now = datetime.now().astimezone()
    add_run(engine, "old", kind="ohlc", state="SUCCESS", created_at=now - timedelta(hours=2))
    add_run(engine, "mid", kind="all", state="PARTIAL", created_at=now - timedelta(hours=1),
            errors=[{"instrument": "ETH/USD 1h", "stage": "ohlc", "error": "boom"}])
    add_run(engine, "new", kind="all", state="STARTED", created_at=now)

    body = client.get("/api/runs").get_json()
    assert [run["task_id"] for run in body["runs"]] == ["new", "mid", "old"]
    assert body["runs"][1]["errors"][0]["error"] == "boom" and body["runs"][0]["finished_at"] is None
    assert [r["task_id"] for r in client.get("/api/runs?state=partial").get_json()["runs"]] == ["mid"]
    assert [r["task_id"] for r in client.get("/api/runs?task=ohlc").get_json()["runs"]] == ["old"]
    assert [r["task_id"] for r in client.get("/api/runs?limit=2").get_json()["runs"]] == ["new", "mid"]


@pytest.mark.parametrize(("url", "parameter"), [
    ("/api/candles", "symbol"),
    ("/api/candles?symbol=BTCUSD", "symbol"),
    ("/api/candles?symbol=BTC/USD&timeframe=hourly", "timeframe"),
    ("/api/candles?symbol=BTC/USD&since=last+week", "since"),
    ("/api/candles?symbol=BTC/USD&until=2024-02-30", "until"),
    ("/api/candles?symbol=BTC/USD&since=2024-02-01&until=2024-01-01", "until"),
    ("/api/candles?symbol=BTC/USD&limit=0", "limit"),
    ("/api/candles?symbol=BTC/USD&limit=abc", "limit"),
    ("/api/candles?symbol=BTC/USD&limit=5001", "limit"),
    ("/api/candles?symbol=BTC/USD&limit=-1", "limit"),
    ("/api/candles?symbol=BTC/USD&exchange=kra%20ken", "exchange"),
    ("/api/candles?symbol=BTC/USD&sort=desc", "sort"),
    ("/api/signals?symbol=btc", "symbol"),
    ("/api/signals?timeframe=7", "timeframe"),
    ("/api/signals?strategy=drop%20table", "strategy"),
    ("/api/signals?since=0001-01-01T00:00%2B01:00", "since"),
    ("/api/signals?limit=0", "limit"),
    ("/api/runs?state=DONE", "state"),
    ("/api/runs?task=everything", "task"),
    ("/api/runs?limit=501", "limit"),
    ("/api/instruments?active=maybe", "active"),
    ("/api/instruments?symbol=BTC/USD", "symbol"),
])
def test_a_malformed_filter_is_refused_naming_it(client, engine, url, parameter):
    response = client.get(url)
    assert response.status_code == 400
    assert response.get_json()["status"] == "error" and response.get_json()["parameter"] == parameter
