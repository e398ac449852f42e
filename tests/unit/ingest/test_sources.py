"""ccxt errors map to retry or not by ccxt's own taxonomy; capabilities are data."""

import ccxt
import pytest

from services.core.exceptions import PermanentSourceError, RetryableSourceError
from services.ingest.sources.capabilities import capabilities_for
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
