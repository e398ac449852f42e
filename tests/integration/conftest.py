"""The simulator's dialects as a fixture parameter: a test asking for `dialect` runs once per exchange dialect."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.exchange_sim.controller import DIALECTS


@dataclass(frozen=True)
class Dialect:
    """What a test needs to know of one simulated exchange: the ccxt id that speaks it and its paths."""

    name: str  # the simulator's dialect, and the ccxt exchange id the workers use for it
    candles_path: str  # the candle endpoint, for fault rules
    markets_path: str  # the request load_markets() makes for the market list
    ids: dict  # ccxt symbol -> the exchange's own market id


_DIALECTS = {
    "binance": Dialect("binance", "/api/v3/klines", "/api/v3/exchangeInfo", {"BTC/USD": "BTCUSD"}),
    "kraken": Dialect("kraken", "/0/public/OHLC", "/0/public/AssetPairs", {"BTC/USD": "XXBTZUSD"}),
}
assert set(_DIALECTS) == set(DIALECTS), "every dialect the simulator speaks is tested"


@pytest.fixture(params=DIALECTS)
def dialect(request) -> Dialect:
    """Each simulator dialect in turn (test ids name it: test_x[kraken])."""
    return _DIALECTS[request.param]
