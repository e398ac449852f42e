"""Run status errors are short labels: classified by type and cause, never the SQL or the exchange's body."""

from __future__ import annotations

import ccxt
import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DataError, OperationalError

from services.core.exceptions import PermanentSourceError, RetryableSourceError
from services.core.pipeline.failures import describe_failure
from services.core.store.instruments import UnknownInstrument


def _caused(outer: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as inner:
            raise outer from inner
    except Exception as raised:
        return raised


SQL = "INSERT INTO instruments (exchange, symbol) VALUES (%(e)s, %(s)s) [parameters: {'e': 'x'}]"


@pytest.mark.parametrize(("exc", "label"), [
    (DataError(SQL, {}, Exception("value too long for type character varying(8)")),
     "rejected by the database: a value does not fit"),
    (OperationalError(SQL, {}, Exception("server closed the connection")), "database unavailable"),
    (redis.exceptions.ConnectionError("Error 111 connecting"), "redis unavailable"),
    (_caused(RetryableSourceError("kraken fetch_ohlcv: RequestTimeout: <html>…"), ccxt.RequestTimeout("t")),
     "exchange timeout"),
    (_caused(RetryableSourceError("kraken: DDoSProtection: 429"), ccxt.DDoSProtection("429")), "exchange rate limit"),
    (_caused(RetryableSourceError("x"), ccxt.ExchangeNotAvailable("503")), "exchange unavailable"),
    (_caused(PermanentSourceError("x"), ccxt.BadSymbol("no")), "rejected: the exchange does not know the symbol"),
    (PermanentSourceError("kraken does not list symbol 'ZZ/ZZ'"), "rejected: kraken does not list symbol 'ZZ/ZZ'"),
    (UnknownInstrument("BTC/USD 1h was never ingested"), "rejected: BTC/USD 1h was never ingested"),
    (SoftTimeLimitExceeded(), "time limit exceeded"),
    (KeyError("close"), "internal error (KeyError); see the worker logs"),
])
def test_each_failure_gets_its_label(exc, label):
    assert describe_failure(exc) == label


def test_no_label_carries_sql_or_parameters():
    label = describe_failure(DataError(SQL, {"e": "secret"}, Exception("boom")))
    assert "INSERT" not in label and "parameters" not in label and "secret" not in label
