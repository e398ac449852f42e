"""URL rewriting points a real ccxt client at another host without touching paths."""

from __future__ import annotations

import ccxt

from services.ingest.sources.ccxt_urls import point_ccxt_at, rewrite_urls

BASE = "http://127.0.0.1:9999"


def test_every_nested_url_gets_the_new_host_and_keeps_its_path():
    urls = {"public": "https://api.example.com/api/v3",
            "futures": {"public": "https://fapi.example.com/fapi/v1?x=1", "rest": 3}}
    assert rewrite_urls(urls, BASE + "/") == {
        "public": BASE + "/api/v3",
        "futures": {"public": BASE + "/fapi/v1?x=1", "rest": 3},
    }


def test_a_real_binance_client_points_all_its_apis_at_the_base():
    exchange = point_ccxt_at(ccxt.binance(), BASE)
    api = exchange.urls["api"]
    assert api["public"] == BASE + "/api/v3"
    assert api["fapiPublic"] == BASE + "/fapi/v1"
    assert all(url.startswith(BASE) for url in api.values())


def test_other_exchanges_clients_are_untouched():
    point_ccxt_at(ccxt.binance(), BASE)
    assert ccxt.binance().urls["api"]["public"] == "https://api.binance.com/api/v3"


def test_a_real_kraken_client_whose_api_urls_are_bare_hosts_points_at_the_base():
    # Kraken's urls['api'] has no path ('https://api.kraken.com'); sign() appends /0/public/<method>.
    exchange = point_ccxt_at(ccxt.kraken(), BASE + "/")
    assert exchange.urls["api"]["public"] == BASE and exchange.urls["api"]["private"] == BASE
    request = exchange.sign("OHLC", ["public"], "GET", {"pair": "XXBTZUSD", "interval": 60})
    assert request["url"] == BASE + "/0/public/OHLC?pair=XXBTZUSD&interval=60"
