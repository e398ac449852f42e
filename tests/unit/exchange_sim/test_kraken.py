"""The Kraken dialect: its bodies byte for byte, the 720-bar window and `since`/`last`, and the real ccxt
kraken client against it (XBT names mapped back, error envelope -> the error classes ccxt raises on Kraken)."""

from __future__ import annotations

import ccxt
import pytest
import requests

from services.exchange_sim.clock import parse_time_ms
from services.exchange_sim.controller import DEFAULT_NOW
from services.exchange_sim.server import running_simulator
from services.ingest.sources.ccxt_urls import point_ccxt_at, reject_non_json_bodies
from tests.utils.ccxt_sim import ccxt_config_for_sim

HOUR = 3_600_000
NOW = parse_time_ms(DEFAULT_NOW)  # 2024-03-01T00:00:00Z, a bar boundary
SYMBOLS = ["BTC/USD", "ETH/USD", "DOGE/USD", "SOL/USDT", "ETH/BTC"]


@pytest.fixture(scope="module")
def simulator():
    with running_simulator(seed=5, symbols=SYMBOLS, dialect="kraken") as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state(simulator):
    _url, sim = simulator
    sim.clear_faults()
    sim.set_now(NOW, rate=0)
    sim.reset_requests()
    listed = {m["symbol"] for m in sim.listing.describe()}
    if listed - set(SYMBOLS):
        sim.delist_markets(sorted(listed - set(SYMBOLS)))
    sim.list_markets(SYMBOLS)


def kraken(base_url, timeout_ms=10_000):
    exchange = point_ccxt_at(ccxt.kraken({"enableRateLimit": False, "timeout": timeout_ms}), base_url)
    exchange.load_markets()
    return exchange


def get(url: str, path: str) -> str:
    return requests.get(url + path, timeout=5).text


# --- bodies -------------------------------------------------------------------------------------

def test_asset_pairs_names_bitcoin_xbt_with_kraken_s_fields(simulator):
    url, _ = simulator
    assert get(url, "/0/public/AssetPairs?pair=XBTUSD") == (
        '{"error":[],"result":{"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","aclass_base":"currency",'
        '"base":"XXBT","aclass_quote":"currency","quote":"ZUSD","lot":"unit","cost_decimals":5,"pair_decimals":2,'
        '"lot_decimals":8,"lot_multiplier":1,"leverage_buy":[],"leverage_sell":[],"fees":[[0,0.4],[10000,0.35],'
        '[50000,0.24],[100000,0.22],[250000,0.2],[500000,0.18],[1000000,0.16],[2500000,0.14],[5000000,0.12],'
        '[10000000,0.1]],"fees_maker":[[0,0.25],[10000,0.2],[50000,0.14],[100000,0.12],[250000,0.1],[500000,0.08],'
        '[1000000,0.06],[2500000,0.04],[5000000,0.02],[10000000,0.0]],"fee_volume_currency":"ZUSD","margin_call":80,'
        '"margin_stop":40,"ordermin":"0.0001","costmin":"0.5","tick_size":"0.01","status":"online"}}}')


def test_pair_keys_follow_kraken_old_and_new_naming(simulator):
    url, _ = simulator
    result = requests.get(url + "/0/public/AssetPairs", timeout=5).json()["result"]
    assert {key: (p["altname"], p["wsname"], p["base"], p["quote"]) for key, p in result.items()} == {
        "XXBTZUSD": ("XBTUSD", "XBT/USD", "XXBT", "ZUSD"),
        "XETHZUSD": ("ETHUSD", "ETH/USD", "XETH", "ZUSD"),
        "XDGUSD": ("XDGUSD", "XDG/USD", "XXDG", "ZUSD"),
        "SOLUSDT": ("SOLUSDT", "SOL/USDT", "SOL", "USDT"),
        "XETHXXBT": ("ETHXBT", "ETH/XBT", "XETH", "XXBT"),
    }


def test_assets_and_time_bodies(simulator):
    url, _ = simulator
    assets = requests.get(url + "/0/public/Assets?asset=XBT,ZUSD", timeout=5).json()
    assert assets == {"error": [], "result": {
        "XXBT": {"aclass": "currency", "altname": "XBT", "decimals": 10, "display_decimals": 5, "status": "enabled"},
        "ZUSD": {"aclass": "currency", "altname": "USD", "decimals": 4, "display_decimals": 2, "status": "enabled"}}}
    assert get(url, "/0/public/Time") == (
        '{"error":[],"result":{"unixtime":1709251200,"rfc1123":"Fri,  1 Mar 24 00:00:00 +0000"}}')
    assert get(url, "/0/public/Assets?asset=NOPE") == '{"error":["EQuery:Unknown asset"],"result":{}}'


def test_an_ohlc_page_is_rows_of_time_ohlc_vwap_volume_count_then_last(simulator):
    url, _ = simulator
    assert get(url, "/0/public/OHLC?pair=XXBTZUSD&interval=60&since=1709236800") == (
        '{"error":[],"result":{"XXBTZUSD":['
        '[1709240400,"38612.58","38682.71","38536.62","38558.55","38597.62","588.88401000",1104],'
        '[1709244000,"38558.55","38712.32","38534.94","38580.76","38596.64","650.00235000",1218],'
        '[1709247600,"38580.76","38754.46","38580.76","38672.83","38647.20","612.77880000",1148],'
        '[1709251200,"38672.83","38672.83","38672.83","38672.83","38672.83","0.00001000",1]],"last":1709247600}}')


def test_prices_carry_the_pair_decimals(simulator):
    url, _ = simulator
    body = requests.get(url + "/0/public/OHLC?pair=XDGUSD&interval=1440&since=1709078400", timeout=5).json()
    rows = body["result"]["XDGUSD"]
    assert [row[0] for row in rows] == [1709164800, 1709251200] and body["result"]["last"] == 1709164800
    assert all(len(price.split(".")[1]) == 6 for row in rows for price in row[1:6])  # tick 0.000001
    assert all(len(row[6].split(".")[1]) == 8 for row in rows)


# --- the 720-bar window, since and last -------------------------------------------------------

def ohlc(url: str, **params) -> dict:
    return requests.get(url + "/0/public/OHLC", params={"pair": "XBTUSD", **params}, timeout=5).json()["result"]


def test_only_the_latest_720_bars_are_served_whatever_since_asks(simulator):
    url, sim = simulator
    sim.set_now(NOW + 30 * 60_000)
    latest = [row[0] for row in ohlc(url, interval=60)["XXBTZUSD"]]
    assert len(latest) == 720 and latest[-1] * 1000 == NOW and latest[0] * 1000 == NOW - 719 * HOUR
    for since in (0, (NOW - 2000 * HOUR) // 1000, (NOW - 720 * HOUR) // 1000):
        assert [row[0] for row in ohlc(url, interval=60, since=since)["XXBTZUSD"]] == latest


def test_since_is_exclusive_and_the_open_bar_is_always_there(simulator):
    url, sim = simulator
    sim.set_now(NOW + 30 * 60_000)
    after = ohlc(url, interval=60, since=(NOW - 3 * HOUR) // 1000)
    assert [row[0] * 1000 for row in after["XXBTZUSD"]] == [NOW - 2 * HOUR, NOW - HOUR, NOW]
    assert after["last"] * 1000 == NOW - HOUR, "last: the newest closed bar"
    polled = ohlc(url, interval=60, since=after["last"])
    assert [row[0] * 1000 for row in polled["XXBTZUSD"]] == [NOW]
    future = ohlc(url, interval=60, since=(NOW + 10 * HOUR) // 1000)
    assert [row[0] * 1000 for row in future["XXBTZUSD"]] == [NOW]


def test_interval_defaults_to_one_minute_and_takes_kraken_s_minutes(simulator):
    url, _ = simulator
    minutes = ohlc(url)["XXBTZUSD"]
    assert minutes[-1][0] - minutes[-2][0] == 60
    fortnight = ohlc(url, interval=21600)["XXBTZUSD"]
    assert fortnight[-1][0] - fortnight[-2][0] == 15 * 86_400 and fortnight[-1][0] % (15 * 86_400) == 0


# --- the real ccxt kraken client ---------------------------------------------------------------

def test_ccxt_maps_kraken_names_back_to_its_own(simulator):
    url, _ = simulator
    markets = kraken(url).markets
    assert sorted(markets) == sorted(SYMBOLS)
    btc = markets["BTC/USD"]
    assert (btc["id"], btc["base"], btc["quote"], btc["baseId"], btc["type"], btc["active"]) == (
        "XXBTZUSD", "BTC", "USD", "BTC", "spot", True)
    assert btc["precision"] == {"amount": 1e-08, "price": 0.01} and btc["limits"]["amount"]["min"] == 0.0001
    assert markets["DOGE/USD"]["id"] == "XDGUSD" and markets["ETH/BTC"]["quote"] == "BTC"


def test_ccxt_reads_the_same_candles_from_both_dialects_for_the_same_seed(simulator):
    url, sim = simulator
    sim.set_now(NOW + 20 * 60_000)
    since = NOW - 300 * HOUR
    from_kraken = kraken(url).fetch_ohlcv("ETH/USD", "1h", since)
    with running_simulator(seed=5, symbols=["ETH/USD"], now=NOW + 20 * 60_000) as (binance_url, _):
        binance = point_ccxt_at(ccxt.binance(ccxt_config_for_sim()), binance_url)
        from_binance = binance.fetch_ohlcv("ETH/USD", "1h", since, 1000)
    assert len(from_kraken) == 301 and from_kraken == from_binance
    assert from_kraken == sim.ohlcv("ETH/USD", "1h", since, NOW + HOUR)


def test_fetch_time_is_the_simulated_clock(simulator):
    url, sim = simulator
    sim.set_now("2024-05-05T05:05:05Z")
    assert kraken(url).fetch_time() == parse_time_ms("2024-05-05T05:05:05Z")


@pytest.mark.parametrize(("rule", "error"), [
    ({"kind": "http_429"}, ccxt.DDoSProtection),  # EGeneral:Too many requests, in a 200
    ({"kind": "http_418"}, ccxt.DDoSProtection),  # EGeneral:Temporary lockout
    ({"kind": "http_503"}, ccxt.ExchangeNotAvailable),  # the CDN's HTML page
    ({"kind": "http_503", "body": "json"}, ccxt.ExchangeNotAvailable),  # EService:Unavailable
    ({"kind": "http_500", "body": "json"}, ccxt.ExchangeNotAvailable),  # EGeneral:Internal error
    ({"kind": "http_504"}, ccxt.RequestTimeout),
    ({"kind": "malformed_json"}, ccxt.BadResponse),
    ({"kind": "html_page"}, ccxt.BadResponse),
])
def test_faults_raise_what_ccxt_raises_against_kraken(simulator, rule, error):
    url, sim = simulator
    exchange = reject_non_json_bodies(kraken(url))
    sim.set_faults([{**rule, "path": "/0/public/OHLC"}])
    with pytest.raises(error):
        exchange.fetch_ohlcv("BTC/USD", "1h")


def test_rate_limits_come_in_the_envelope_with_http_200(simulator):
    url, sim = simulator
    sim.set_faults([{"kind": "http_429", "path": "/0/public/OHLC"}])
    answer = requests.get(url + "/0/public/OHLC?pair=XBTUSD", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"error": ["EGeneral:Too many requests"], "result": {}}


def test_a_timeout_longer_than_the_client_waits_is_a_request_timeout(simulator):
    url, sim = simulator
    exchange = kraken(url, timeout_ms=300)
    sim.set_faults([{"kind": "timeout", "seconds": 1, "path": "/0/public/OHLC", "times": 1}])
    with pytest.raises(ccxt.RequestTimeout):
        exchange.fetch_ohlcv("BTC/USD", "1h")


def test_request_errors_come_in_kraken_s_envelope_and_become_ccxt_s_classes(simulator):
    url, sim = simulator
    exchange = kraken(url)
    answer = requests.get(url + "/0/public/OHLC?pair=NOPE", timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"error": ["EQuery:Unknown asset pair"], "result": {}})
    with pytest.raises(ccxt.ExchangeError, match="EQuery:Unknown asset pair"):
        exchange.publicGetOHLC({"pair": "NOPE"})  # what ccxt raises on Kraken for a pair it no longer has
    with pytest.raises(ccxt.BadRequest, match="EGeneral:Invalid arguments"):
        exchange.publicGetOHLC({"pair": "XBTUSD", "interval": 7})
    with pytest.raises(ccxt.BadSymbol):
        exchange.fetch_ohlcv("ZZZ/USD", "1h")  # unknown to load_markets: refused without a request
    assert "/0/public/OHLC" in sim.request_counts()


def test_bad_candles_and_gaps_apply_to_kraken_rows(simulator):
    url, sim = simulator
    exchange = kraken(url)
    bad, gone = NOW - 5 * HOUR, NOW - 3 * HOUR
    sim.set_faults([{"kind": "bad_candle", "symbol": "BTC/USD", "ts": [bad], "defect": "negative_volume"},
                    {"kind": "missing_candles", "symbol": "BTC/USD", "ts": [gone]}])
    rows = {row[0]: row for row in exchange.fetch_ohlcv("BTC/USD", "1h", NOW - 10 * HOUR)}
    true_bar = sim.ohlcv("BTC/USD", "1h", bad, bad + HOUR)[0]
    assert rows[bad][5] == -true_bar[5] and rows[bad][:5] == true_bar[:5], "only the volume (row field 6) is spoiled"
    assert gone not in rows and len(rows) == 10


def test_the_other_dialect_s_paths_are_404_with_a_message_naming_the_setting(simulator):
    url, _ = simulator
    answer = requests.get(url + "/api/v3/klines?symbol=BTCUSD&interval=1h", timeout=5)
    assert answer.status_code == 404 and "SIM_DIALECT=binance" in answer.text
    with running_simulator(symbols=["BTC/USD"]) as (binance_url, _):
        answer = requests.get(binance_url + "/0/public/OHLC?pair=XBTUSD", timeout=5)
    assert answer.status_code == 404 and "SIM_DIALECT=kraken" in answer.text


# --- the listing, changed at runtime -----------------------------------------------------------

def test_a_market_listed_halted_and_delisted_over_http_is_what_ccxt_then_loads(simulator):
    url, _ = simulator
    exchange = kraken(url)
    listed = requests.post(url + "/_sim/markets", json={"symbols": ["LTC/EUR"]}, timeout=5)
    assert listed.status_code == 200 and {"symbol": "LTC/EUR", "active": True} in listed.json()["markets"]
    assert exchange.load_markets(reload=True)["LTC/EUR"]["id"] == "XLTCZEUR"
    requests.post(url + "/_sim/markets", json={"symbols": ["LTC/EUR"], "active": False}, timeout=5)
    halted = exchange.load_markets(reload=True)["LTC/EUR"]
    assert halted["active"] is False and halted["info"]["status"] == "cancel_only"
    assert len(exchange.fetch_ohlcv("LTC/EUR", "1h")) == 720, "a halted market still has its candles"
    gone = requests.delete(url + "/_sim/markets/LTC/EUR", timeout=5)
    assert gone.status_code == 200 and "LTC/EUR" not in {m["symbol"] for m in gone.json()["markets"]}
    assert "LTC/EUR" not in exchange.load_markets(reload=True)


@pytest.mark.parametrize(("method", "body", "message"), [
    ("post", {"symbols": "BTC/USD"}, "symbols"),
    ("post", {"symbols": ["BTCUSD"]}, "BASE/QUOTE"),
    ("post", {"symbols": ["DOT/USD"], "active": "yes"}, "active"),
    ("delete", {"symbols": ["DOT/USD"]}, "not listed"),
    ("delete", None, "symbols"),
])
def test_bad_listing_requests_are_refused_with_a_message(simulator, method, body, message):
    url, sim = simulator
    answer = getattr(requests, method)(url + "/_sim/markets", json=body, timeout=5)
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert sorted(m["symbol"] for m in sim.listing.describe()) == sorted(SYMBOLS)


def test_before_the_listing_there_is_no_bar_whatever_since_says():
    with running_simulator(dialect="kraken", symbols=["BTC/USD"], listed="2024-03-02") as (url, _):
        for params in ({"interval": 60}, {"interval": 60, "since": 0}, {"interval": 60, "since": NOW // 1000}):
            assert ohlc(url, **params)["XXBTZUSD"] == []
