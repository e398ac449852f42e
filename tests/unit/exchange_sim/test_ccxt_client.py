"""The real ccxt binance client, URLs rewritten, against a running simulator."""

from __future__ import annotations

import math

import ccxt
import pytest
import requests

from services.exchange_sim.clock import parse_time_ms
from services.exchange_sim.controller import DEFAULT_NOW
from services.exchange_sim.server import running_simulator
from services.ingest.sources.ccxt_urls import point_ccxt_at, reject_non_json_bodies
from tests.utils.ccxt_sim import ccxt_config_for_sim

HOUR = 3_600_000
NOW = parse_time_ms(DEFAULT_NOW)
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "BTC/USDT"]


@pytest.fixture(scope="module")
def simulator():
    with running_simulator(seed=11, symbols=SYMBOLS) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state(simulator):
    _url, sim = simulator
    sim.clear_faults()
    sim.set_now(NOW, rate=0)
    sim.reset_requests()


def client(base_url, **config):
    exchange = point_ccxt_at(ccxt.binance({**ccxt_config_for_sim(), **config}), base_url)
    exchange.load_markets()
    return exchange


@pytest.fixture
def binance(simulator):
    return client(simulator[0])


def test_load_markets_lists_the_configured_spot_symbols(binance, simulator):
    assert sorted(binance.markets) == sorted(SYMBOLS)
    btc = binance.market("BTC/USD")
    assert btc["id"] == "BTCUSD" and btc["spot"] and btc["active"]
    assert btc["precision"]["price"] == 0.01 and btc["limits"]["amount"]["min"] == 1e-05
    assert simulator[1].request_counts() == {"/api/v3/exchangeInfo": 1}


def test_load_markets_with_ccxt_defaults_also_asks_for_futures_and_gets_none(simulator):
    url, sim = simulator
    exchange = point_ccxt_at(ccxt.binance({"enableRateLimit": False}), url)
    assert sorted(exchange.load_markets()) == sorted(SYMBOLS)
    assert set(sim.request_counts()) == {
        "/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"}


def test_two_consecutive_pages_are_contiguous_aligned_and_do_not_overlap(binance):
    since = NOW - 60 * 24 * HOUR
    first = binance.fetch_ohlcv("BTC/USD", "1h", since, 1000)
    second = binance.fetch_ohlcv("BTC/USD", "1h", first[-1][0] + 1, 1000)
    stamps = [row[0] for row in first + second]
    assert len(first) == 1000 and stamps[0] == since
    assert stamps == list(range(since, NOW + 1, HOUR))  # ends with the candle holding now
    assert all(low <= min(o, c) <= max(o, c) <= high and v > 0
               for _t, o, high, low, c, v in first + second)


def test_a_limit_over_1000_is_clamped_and_no_limit_means_500(binance):
    assert len(binance.fetch_ohlcv("ETH/USD", "5m", NOW - 5000 * 300_000, 1500)) == 1000
    latest = binance.fetch_ohlcv("ETH/USD", "5m")
    assert len(latest) == 500 and latest[-1][0] == NOW


def test_until_bounds_a_page_by_open_time(binance):
    rows = binance.fetch_ohlcv("SOL/USD", "1h", NOW - 10 * HOUR, params={"until": NOW - 5 * HOUR})
    assert [r[0] for r in rows] == list(range(NOW - 10 * HOUR, NOW - 5 * HOUR + 1, HOUR))


def test_the_same_request_and_an_overlapping_page_give_identical_candles(binance):
    since = NOW - 300 * HOUR
    page = binance.fetch_ohlcv("BTC/USDT", "1h", since, 200)
    assert binance.fetch_ohlcv("BTC/USDT", "1h", since, 200) == page
    shifted = binance.fetch_ohlcv("BTC/USDT", "1h", since + 50 * HOUR, 200)
    assert shifted[:150] == page[50:]


def test_another_simulator_with_the_same_seed_serves_the_same_candles(binance):
    since = NOW - 100 * HOUR
    with running_simulator(seed=11, symbols=SYMBOLS) as (url, _sim):
        twin = client(url).fetch_ohlcv("ETH/USD", "1h", since, 100)
    with running_simulator(seed=12, symbols=SYMBOLS) as (url, _sim):
        other = client(url).fetch_ohlcv("ETH/USD", "1h", since, 100)
    mine = binance.fetch_ohlcv("ETH/USD", "1h", since, 100)
    assert twin == mine and other != mine


def test_advancing_the_clock_closes_the_open_candle_and_adds_new_ones(binance, simulator):
    sim = simulator[1]
    sim.set_now(NOW + 20 * 60_000)
    before = binance.fetch_ohlcv("BTC/USD", "1h", NOW - 2 * HOUR)
    assert before[-1][0] == NOW and binance.fetch_time() == NOW + 20 * 60_000
    sim.advance(2 * 3600)
    after = binance.fetch_ohlcv("BTC/USD", "1h", NOW - 2 * HOUR)
    assert [r[0] for r in after] == [NOW - 2 * HOUR + i * HOUR for i in range(5)]
    assert after[:2] == before[:2]
    opened, closed = before[-1], after[2]
    assert closed[1] == opened[1] and closed[5] > opened[5]
    assert closed[2] >= opened[2] and closed[3] <= opened[3]


def test_the_clock_can_be_moved_over_http(simulator):
    url, sim = simulator
    reply = requests.post(f"{url}/_sim/clock", json={"now": "2024-03-02T00:00:00Z"}, timeout=5)
    assert reply.json()["now_ms"] == NOW + 24 * HOUR
    requests.post(f"{url}/_sim/clock", json={"advance": 90}, timeout=5)
    assert sim.now_ms() == NOW + 24 * HOUR + 90_000


@pytest.mark.parametrize("rule, error", [
    ({"kind": "http_429"}, ccxt.DDoSProtection),  # binance.handle_errors: 418/429 -> DDoSProtection
    ({"kind": "http_418"}, ccxt.DDoSProtection),
    ({"kind": "http_500"}, ccxt.ExchangeNotAvailable),
    ({"kind": "http_502"}, ccxt.ExchangeNotAvailable),
    ({"kind": "http_503"}, ccxt.ExchangeNotAvailable),
    ({"kind": "http_504"}, ccxt.RequestTimeout),
    ({"kind": "http_500", "body": "binance_json"}, ccxt.OperationFailed),  # code -1001
])
def test_each_http_fault_raises_the_matching_ccxt_error_then_recovers(binance, simulator, rule, error):
    simulator[1].set_faults([{**rule, "path": "/api/v3/klines", "times": 1}])
    with pytest.raises(error):
        binance.fetch_ohlcv("BTC/USD", "1h", limit=5)
    assert len(binance.fetch_ohlcv("BTC/USD", "1h", limit=5)) == 5


def test_rate_limit_errors_are_network_errors_and_carry_retry_after(binance, simulator):
    url, sim = simulator
    sim.set_faults([{"kind": "http_429", "retry_after": 7}])
    with pytest.raises(ccxt.NetworkError):
        binance.fetch_ohlcv("BTC/USD", "1h", limit=5)
    reply = requests.get(f"{url}/api/v3/klines?symbol=BTCUSD&interval=1h", timeout=5)
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "7"
    assert reply.json()["code"] == -1003


def test_a_stalled_response_is_a_request_timeout_for_a_short_client_timeout(simulator):
    url, sim = simulator
    impatient = client(url, timeout=300)
    sim.set_faults([{"kind": "timeout", "seconds": 1.0, "times": 1}])
    with pytest.raises(ccxt.RequestTimeout):
        impatient.fetch_ohlcv("BTC/USD", "1h", limit=5)


def test_an_unknown_symbol_is_binances_invalid_symbol_and_ccxt_bad_symbol(binance, simulator):
    binance.markets["DOGE/USD"] = {**binance.markets["BTC/USD"], "id": "DOGEUSD", "symbol": "DOGE/USD"}
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        binance.fetch_ohlcv("DOGE/USD", "1h")


def test_stock_ccxt_passes_a_truncated_body_through_as_garbage_rows(binance, simulator):
    simulator[1].set_faults([{"kind": "malformed_json", "times": 1}])
    rows = binance.fetch_ohlcv("BTC/USD", "1h", limit=5)
    assert rows and all(r[1] is None for r in rows)  # ccxt raises nothing here


@pytest.mark.parametrize("kind", ["malformed_json", "html_page"])
def test_with_reject_non_json_bodies_a_malformed_body_is_bad_response(binance, simulator, kind):
    reject_non_json_bodies(binance)
    simulator[1].set_faults([{"kind": kind, "times": 1}])
    with pytest.raises(ccxt.BadResponse):
        binance.fetch_ohlcv("BTC/USD", "1h", limit=5)
    assert len(binance.fetch_ohlcv("BTC/USD", "1h", limit=5)) == 5


def test_missing_candles_are_absent_and_the_page_fills_up_past_them(binance, simulator):
    gone = [NOW - 30 * HOUR, NOW - 29 * HOUR, NOW - 12 * HOUR]
    simulator[1].set_faults([{"kind": "missing_candles", "symbol": "ETH/USD", "ts": gone}])
    rows = binance.fetch_ohlcv("ETH/USD", "1h", NOW - 40 * HOUR, 20)
    stamps = [r[0] for r in rows]
    assert len(rows) == 20 and not set(gone) & set(stamps)
    assert stamps[-1] == NOW - 40 * HOUR + 21 * HOUR
    assert NOW - 12 * HOUR in [r[0] for r in binance.fetch_ohlcv("BTC/USD", "1h", NOW - 40 * HOUR, 40)]


def test_bad_candles_appear_exactly_as_configured(binance, simulator):
    simulator[1].set_faults([
        {"kind": "bad_candle", "ts": [NOW - 3 * HOUR], "defect": "high_below_low"},
        {"kind": "bad_candle", "ts": [NOW - 2 * HOUR], "defect": "nan_price"},
        {"kind": "bad_candle", "ts": [NOW - 1 * HOUR], "defect": "negative_price", "field": "low"},
    ])
    rows = binance.fetch_ohlcv("BTC/USD", "1h", NOW - 4 * HOUR)
    sound, high_below_low, nan_close, negative_low, _open = rows
    assert sound[2] >= sound[3] > 0
    assert high_below_low[2] < high_below_low[3]
    assert math.isnan(nan_close[4])
    assert negative_low[3] < 0


def test_faults_and_request_counts_are_reachable_over_http(binance, simulator):
    url, _sim = simulator
    posted = requests.post(f"{url}/_sim/faults", timeout=5, json={
        "rules": [{"kind": "http_503", "symbol": "SOL/USD", "times": 2}], "mode": "add"})
    assert posted.json()["rules"][0]["symbol"] == "SOLUSD"
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            binance.fetch_ohlcv("SOL/USD", "1h", limit=3)
    binance.fetch_ohlcv("SOL/USD", "1h", limit=3)
    seen = requests.get(f"{url}/_sim/requests", timeout=5).json()
    assert seen["counts"] == {"/api/v3/exchangeInfo": 1, "/api/v3/klines": 3}
    assert [e["status"] for e in seen["recent"]][-3:] == [503, 503, 200]
    assert requests.post(f"{url}/_sim/faults", json=[{"kind": "bogus"}], timeout=5).status_code == 400


def test_the_simulator_stops_listening_when_the_context_ends():
    with running_simulator() as (url, _sim):
        assert requests.get(f"{url}/api/v3/ping", timeout=5).json() == {}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/v3/ping", timeout=2)
