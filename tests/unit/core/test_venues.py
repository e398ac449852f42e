"""Venues: a ccxt id or a MIC, each kind's symbol rule, and the calendar of a MIC."""

from __future__ import annotations

import pytest

from services.core.venues import UnknownVenue, check_symbol, mic_codes, trading_calendar, venue


@pytest.mark.parametrize(("exchange", "kind"), [("kraken", "ccxt"), ("binance", "ccxt"), ("XNYS", "mic"),
                                                ("XNAS", "mic"), ("ARCX", "mic"),
                                                ("XSHG", "mic"), ("XTAI", "mic")])
def test_an_exchange_is_a_ccxt_id_or_a_mic(exchange, kind):
    assert venue(exchange).kind == kind


@pytest.mark.parametrize("exchange", ["KRAKEN", "xnys", "XXXX", "24/7", "us_futures", "", "NYSE", "HKEX", "TASE"])
def test_anything_else_is_refused_with_both_rules_named(exchange):
    with pytest.raises(UnknownVenue, match=r"neither a ccxt exchange id .* nor a MIC"):
        venue(exchange)


def test_only_four_character_codes_count_as_mics():
    codes = mic_codes()
    assert {"XNYS", "XSHG", "XTAI", "XLON"} <= codes
    assert all(len(code) == 4 and code.isupper() for code in codes)


@pytest.mark.parametrize(("exchange", "symbol"), [("kraken", "BTC/USD"), ("kraken", "1INCH/USDT"), ("XNYS", "MSFT"),
                                                  ("XSHG", "600519"), ("XTAI", "2330"), ("XNYS", "BRK.B"),
                                                  ("XNYS", "BF-B")])
def test_each_kind_takes_its_own_symbols(exchange, symbol):
    assert check_symbol(exchange, symbol) == symbol


@pytest.mark.parametrize(("exchange", "symbol"), [("kraken", "MSFT"), ("XNYS", "BTC/USD"), ("XNYS", "msft"),
                                                  ("XNYS", "BRK..B"), ("XNYS", ".B"), ("XNYS", "B-"),
                                                  ("XNYS", "A" * 16), ("XNYS", "MS FT"), ("kraken", "btc/usd")])
def test_garbage_is_still_refused_naming_the_rule(exchange, symbol):
    with pytest.raises(ValueError, match="expected"):
        check_symbol(exchange, symbol)


def test_a_mic_has_its_venues_calendar_and_a_ccxt_exchange_none():
    assert trading_calendar("kraken") is None
    calendar = trading_calendar("XTAI")
    assert str(calendar.tz) == "Asia/Taipei"
    assert trading_calendar("XNAS").is_session("2026-11-27") and not trading_calendar("XNAS").is_session("2026-11-26")
    # 2026-01-01 is a holiday in Taipei; the 2nd (a Friday) is a session.
    assert not calendar.is_session("2026-01-01") and calendar.is_session("2026-01-02")
