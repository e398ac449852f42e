"""MARKETS_AUTO_ADD: the rule's text, its errors, and which markets it adds."""

from __future__ import annotations

import pytest

from services.core.auto_add import parse_auto_add
from services.core.config import load_settings
from services.core.exceptions import ConfigurationError
from services.ingest.market_sync import auto_additions

MARKETS = [{"symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "type": "spot"},
           {"symbol": "ETH/USD", "base": "ETH", "quote": "USD", "type": "spot"},
           {"symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "type": "swap"},
           {"symbol": "SOL/EUR", "base": "SOL", "quote": "EUR", "type": "spot"}]


def test_an_empty_rule_adds_nothing():
    assert parse_auto_add("  ") is None
    assert auto_additions(MARKETS, set(), None) == []


def test_every_field_given_must_accept_the_market_and_bars_give_alternatives():
    rule = parse_auto_add("quote=USDT|EUR, type=spot")
    assert auto_additions(MARKETS, set(), rule) == ["BTC/USDT", "SOL/EUR"]
    assert str(rule) == "quote=EUR|USDT,type=spot"


def test_the_rule_never_re_adds_what_the_universe_holds_or_what_has_no_addressable_symbol():
    rule = parse_auto_add("quote=USDT")
    assert auto_additions(MARKETS, {"BTC/USDT"}, rule) == []  # the swap's symbol is not BASE/QUOTE


@pytest.mark.parametrize(("text", "words"), [("quote", "not field=value"), ("side=buy", "unknown field 'side'"),
                                             ("quote=USD,quote=EUR", "given twice"), ("quote=USD|", "empty")])
def test_a_bad_rule_is_refused_with_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        parse_auto_add(text)


def test_a_bad_rule_stops_the_settings_naming_the_variable(monkeypatch):
    monkeypatch.setenv("MARKETS_AUTO_ADD", "colour=red")
    with pytest.raises(ConfigurationError, match="MARKETS_AUTO_ADD"):
        load_settings()
