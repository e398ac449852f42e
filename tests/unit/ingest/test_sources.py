"""ccxt errors map to retry or not by ccxt's own taxonomy; capabilities are data."""

import re
from pathlib import Path

import ccxt
import pytest

from services.core.exceptions import PermanentSourceError, RetryableSourceError
from services.ingest.sources.capabilities import capabilities_for
from services.ingest.sources.ccxt_markets import drop_market_payloads
from services.ingest.sources.ccxt_source import CcxtSource, classify_ccxt_error


@pytest.mark.parametrize("error", [ccxt.NetworkError, ccxt.RequestTimeout, ccxt.RateLimitExceeded,
                                   ccxt.DDoSProtection, ccxt.ExchangeNotAvailable, ccxt.BadResponse])
def test_transient_ccxt_errors_are_retryable(error):
    assert isinstance(classify_ccxt_error(error("x"), "fetch"), RetryableSourceError)


@pytest.mark.parametrize("error", [ccxt.BadSymbol, ccxt.BadRequest, ccxt.AuthenticationError,
                                   ccxt.NotSupported, ccxt.PermissionDenied])
def test_request_errors_are_permanent_and_say_what_happened(error):
    mapped = classify_ccxt_error(error("no such market"), "kraken fetch_ohlcv FOO/BAR")
    assert isinstance(mapped, PermanentSourceError)
    assert "kraken fetch_ohlcv FOO/BAR" in str(mapped) and error.__name__ in str(mapped)


def test_capabilities_come_from_ccxt_features_plus_overrides():
    kraken = capabilities_for("kraken", ccxt.kraken().features)
    binance = capabilities_for("binance", ccxt.binance().features)
    assert (kraken.max_candles, kraken.full_history) == (720, False)
    assert (binance.max_candles, binance.full_history) == (1000, True)
    assert binance.options["fetchMarkets"]["types"] == ["spot"]


def test_an_unknown_exchange_id_is_refused_by_name():
    with pytest.raises(PermanentSourceError, match="nosuchexchange"):
        CcxtSource("nosuchexchange")


def _candle_calls_reading_market_info() -> set[str]:
    """Exchanges whose fetch_ohlcv / parse_ohlcv / fetch_time body reads market['info'], from ccxt's source."""
    found = set()
    reads = re.compile(r"market\[['\"]info['\"]\]|\(market, ['\"]info['\"]")
    for exchange_id in ccxt.exchanges:
        source = (Path(ccxt.__file__).parent / f"{exchange_id}.py").read_text()
        for function in ("fetch_ohlcv", "parse_ohlcv", "fetch_time"):
            for body in re.findall(rf"\n    def {function}\(.*?(?=\n    def |\Z)", source, re.S):
                if reads.search(body):
                    found.add(exchange_id)
    return found


def test_market_payloads_are_kept_exactly_where_ccxt_reads_them_for_candles():
    readers = _candle_calls_reading_market_info()
    assert "okx" in readers  # the scan finds what it looks for
    keeping = {exchange_id for exchange_id in ccxt.exchanges
               if capabilities_for(exchange_id, getattr(ccxt, exchange_id).features).reads_market_info}
    assert keeping == readers


def test_a_dropped_payload_leaves_every_parsed_market_field():
    client = ccxt.binance()
    raw = [{"id": "BTCUSDT", "symbol": "BTC/USDT", "info": {"filters": [1, 2, 3]}}]
    client.fetch_markets = lambda params=None: [dict(market) for market in raw]
    drop_market_payloads(client)
    (market,) = client.fetch_markets()
    assert market == {"id": "BTCUSDT", "symbol": "BTC/USDT", "info": {}}
