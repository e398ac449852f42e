"""Klines bodies are pinned byte for byte: a faster simulator must serve exactly the candles it always has."""

from __future__ import annotations

import hashlib

import pytest

from services.exchange_sim import timeframes
from services.exchange_sim.app import create_app
from services.exchange_sim.controller import Simulator

# sha256 prefixes of the bodies below, recorded before the simulator was made faster (commit 0d88da3's code).
PAGES = {
    "1s": "d89a5ddeb61192c4", "1m": "c39bbad13f63b50b", "3m": "f1599e2d76178235", "5m": "c746b86ac72ab8ec",
    "15m": "9cbb6d9ecc275ae7", "30m": "20a9ca7f06ef73fa", "1h": "1d5b90ad5538ebfd", "2h": "d1948c33e339566e",
    "4h": "603ff1f27bb0be86", "6h": "27c450b207f3dce4", "8h": "ecf72409f900d240", "12h": "14f096ef0106e2e7",
    "1d": "afaf5a0ebea468dc", "3d": "e6d9f15d6805ebf1", "1w": "469c39570cdda7b8", "1M": "9f5ab9ff19bffda2",
}
QUERIES = ("limit=1000", "limit=2", "startTime=0&limit=3", "startTime=1700000000000&limit=1000",
           "startTime=1650000000000&endTime=1651000000000")
FAULTED = "f20c58506170e901"


@pytest.fixture(scope="module")
def client():
    # Now falls inside a bar of every interval, so each page ends with an open candle.
    sim = Simulator(seed=3, symbols=["BTC/USD", "C0042/USD", "ETH/BTC"], now="2024-03-01T00:17:17.777Z")
    return sim, create_app(sim).test_client()


def digest(client, interval: str, queries=QUERIES) -> str:
    h = hashlib.sha256()
    for symbol in ("BTCUSD", "C0042USD", "ETHBTC"):
        for query in queries:
            reply = client.get(f"/api/v3/klines?symbol={symbol}&interval={interval}&{query}")
            assert reply.status_code == 200
            h.update(reply.data)
    return h.hexdigest()[:16]


@pytest.mark.parametrize("interval", timeframes.INTERVALS)
def test_every_interval_serves_the_recorded_pages(client, interval):
    assert digest(client[1], interval) == PAGES[interval]


def test_gaps_and_bad_candles_are_applied_to_the_recorded_pages(client):
    sim, http = client
    hour = 3_600_000
    sim.set_faults([{"kind": "missing_candles", "ts": [1_709_251_200_000 - 5 * hour]},
                    {"kind": "bad_candle", "ts": [1_709_251_200_000 - 3 * hour], "defect": "nan_price"},
                    {"kind": "bad_candle", "ts": [1_709_251_200_000 - 2 * hour], "defect": "high_below_low"}])
    try:
        assert digest(http, "1h", ("limit=20", "startTime=1709200000000&limit=30")) == FAULTED
    finally:
        sim.clear_faults()
