"""The listing changes while the server runs, in every dialect and every server process; the CLI picks the dialect."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ccxt
import pytest
import requests

from services.exchange_sim.controller import Simulator
from services.exchange_sim.server import parse_args, running_simulator
from services.ingest.sources.ccxt_urls import point_ccxt_at
from tests.unit.exchange_sim.served import http, served_simulator
from tests.utils.ccxt_sim import ccxt_config_for_sim

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = {"binance": lambda: ccxt.binance(ccxt_config_for_sim()),
           "kraken": lambda: ccxt.kraken({"enableRateLimit": False})}
UNKNOWN = {"binance": ccxt.BadSymbol, "kraken": ccxt.ExchangeError}  # -1121 / EQuery:Unknown asset pair


@pytest.mark.parametrize("dialect", sorted(CLIENTS))
def test_a_market_appears_halts_and_disappears_for_the_real_client(dialect):
    with running_simulator(symbols=["BTC/USD"], dialect=dialect) as (url, sim):
        exchange = point_ccxt_at(CLIENTS[dialect](), url)
        assert sorted(exchange.load_markets()) == ["BTC/USD"]
        sim.list_markets(["SOL/USD", "ETH/USD"])
        markets = exchange.load_markets(reload=True)
        assert sorted(markets) == ["BTC/USD", "ETH/USD", "SOL/USD"]
        assert {s: (m["base"], m["quote"], m["type"], m["active"]) for s, m in markets.items()}["SOL/USD"] == (
            "SOL", "USD", "spot", True)
        sim.list_markets(["SOL/USD"], active=False)
        assert exchange.load_markets(reload=True)["SOL/USD"]["active"] is False
        candles = exchange.fetch_ohlcv("ETH/USD", "1h", None, 5)
        sim.delist_markets(["ETH/USD"])
        with pytest.raises(UNKNOWN[dialect]):  # its cached market list still has it; the exchange does not
            exchange.fetch_ohlcv("ETH/USD", "1h", None, 5)
        assert "ETH/USD" not in exchange.load_markets(reload=True)
        sim.list_markets(["ETH/USD"])
        assert exchange.load_markets(reload=True) and exchange.fetch_ohlcv("ETH/USD", "1h", None, 5) == candles, \
            "relisted, it has the same candles"


def test_the_admin_route_lists_in_both_dialects_alike():
    for dialect in CLIENTS:
        with running_simulator(symbols=["BTC/USD"], dialect=dialect) as (url, _):
            requests.post(url + "/_sim/markets", json={"symbols": ["eth/usd"], "active": False}, timeout=5)
            assert requests.get(url + "/_sim/markets", timeout=5).json() == {"markets": [
                {"symbol": "BTC/USD", "active": True}, {"symbol": "ETH/USD", "active": False}]}
            state = requests.get(url + "/_sim/state", timeout=5).json()
            assert state["dialect"] == dialect and state["symbols"] == ["BTC/USD", "ETH/USD"]


def test_a_listing_change_in_one_process_is_what_the_others_serve():
    # Forked from a fresh interpreter, not from the test runner (see test_shared_state).
    code = ("from tests.unit.exchange_sim.test_listing import listing_changed_in_one_process_is_what_the_others_serve"
            " as scenario; scenario()")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def _relist(sim: Simulator) -> None:
    sim.delist_markets(["BTC/USD"])
    sim.list_markets(["DOGE/USD", "ADA/USD"])
    sim.list_markets(["ADA/USD"], active=False)


def listing_changed_in_one_process_is_what_the_others_serve():
    sim = Simulator(symbols=["BTC/USD", "ETH/USD"])
    assert sorted(sim.markets) == ["BTCUSD", "ETHUSD"]  # this process has read (and cached) the listing
    child = multiprocessing.get_context("fork").Process(target=_relist, args=(sim,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert list(sim.markets) == ["ETHUSD", "DOGEUSD", "ADAUSD"] and sim.listing.halted == {"ADAUSD"}


def test_the_cli_speaks_the_dialect_it_is_told_and_refuses_others(capsys):
    assert parse_args([]).dialect == "binance"
    assert parse_args(["--dialect", "kraken"]).dialect == "kraken"
    with pytest.raises(SystemExit):
        parse_args(["--dialect", "coinbase"])
    assert "invalid choice: 'coinbase'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="dialect must be one of"):
        Simulator(dialect="coinbase")


@pytest.fixture()
def served_kraken():
    """The CLI's server in the Kraken dialect: two processes, as the container runs it."""
    with served_simulator("--dialect", "kraken", "--symbols", "BTC/USD") as url:
        yield url


def test_a_market_listed_over_http_is_served_by_every_server_process(served_kraken):
    assert http("POST", f"{served_kraken}/_sim/markets", {"symbols": ["SOL/USD"]})[0] == 200
    with ThreadPoolExecutor(8) as pool:  # new connections, spread over both processes
        pairs = list(pool.map(lambda _: sorted(http("GET", f"{served_kraken}/0/public/AssetPairs")[1]["result"]),
                              range(16)))
    assert pairs == [["SOLUSD", "XXBTZUSD"]] * 16
    assert http("DELETE", f"{served_kraken}/_sim/markets/SOL/USD")[0] == 200
    with ThreadPoolExecutor(8) as pool:
        errors = list(pool.map(lambda _: http("GET", f"{served_kraken}/0/public/OHLC?pair=SOLUSD")[1]["error"],
                               range(16)))
    assert errors == [["EQuery:Unknown asset pair"]] * 16
