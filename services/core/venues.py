"""Venues: an exchange is a ccxt id or a stock venue named by its MIC; what each kind allows and its calendar."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from services.core.exchange_ids import ccxt_exchange_ids

if TYPE_CHECKING:  # exchange_calendars loads its holiday tables on import: only where a calendar is asked for
    from exchange_calendars import ExchangeCalendar

__all__ = ["Venue", "VENUE_KINDS", "UnknownVenue", "venue", "mic_codes", "check_symbol", "trading_calendar",
           "TICKER_RE", "PAIR_RE", "SYMBOL_RE"]

# A ccxt market: BASE/QUOTE in capitals (BTC/USD, 1INCH/USDT).
PAIR_RE = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}$")
# A stock ticker: capitals and digits, with one class suffix as venues write it (MSFT, 600519, 2330, BRK.B, BF-B).
# No lookaround, so the same pattern serves Python, pydantic's Rust engine and JSON Schema.
TICKER_RE = re.compile(r"^[A-Z0-9]{1,10}(?:[.\-][A-Z0-9]{1,4})?$")
# Either kind: what a read route's symbol filter takes before the exchange is known.
SYMBOL_RE = re.compile(f"^(?:{PAIR_RE.pattern[1:-1]}|{TICKER_RE.pattern[1:-1]})$")
# ISO 10383 MICs are four capitals or digits; exchange_calendars also names '24/7' and 'us_futures' calendars.
_MIC_RE = re.compile(r"^[A-Z0-9]{4}$")


class UnknownVenue(ValueError):
    """An exchange name that is neither a ccxt exchange id nor a MIC with a trading calendar."""


@dataclass(frozen=True)
class Venue:
    """What a kind of exchange means to the pipeline."""

    kind: str              # "ccxt" or "mic": one name in every layer (API, CLI, docs)
    symbol_re: re.Pattern[str]
    symbol_hint: str       # the rule in words, for error messages
    example: str
    fetches: bool          # the ingest stage fetches from it (ccxt); a MIC venue is fed by imports
    has_calendar: bool     # sessions and holidays (MIC); a ccxt exchange trades 24/7


VENUE_KINDS = {
    "ccxt": Venue("ccxt", PAIR_RE, "BASE/QUOTE in capitals, e.g. BTC/USD", "BTC/USD", fetches=True, has_calendar=False),
    "mic": Venue("mic", TICKER_RE, "a ticker of capitals and digits (., - between them), e.g. MSFT, 600519, 2330",
                 "MSFT", fetches=False, has_calendar=True),
}


# exchange_calendars' aliases that are ISO MICs of their own, sharing another venue's calendar (NASDAQ's XNAS
# trades XNYS's sessions). Its other aliases (NYSE, HKEX, TASE, ...) are names, not MICs.
_MIC_ALIASES = frozenset({"XNAS", "XASE", "ARCX", "BATS", "OOTC", "XTSX"})


@cache
def mic_codes() -> frozenset[str]:
    """The MICs exchange_calendars has a calendar for (XNYS, XNAS, XSHG, XTAI, …)."""
    from exchange_calendars import get_calendar_names

    names = set(get_calendar_names(include_aliases=True))
    return frozenset(name for name in names if _MIC_RE.fullmatch(name)
                     and (name in _MIC_ALIASES or name in get_calendar_names(include_aliases=False)))


def venue(exchange: str) -> Venue:
    """The kind of `exchange`: a ccxt id (lowercase, e.g. kraken) or a MIC (capitals, e.g. XNYS)."""
    if exchange in ccxt_exchange_ids():
        return VENUE_KINDS["ccxt"]
    if _MIC_RE.fullmatch(exchange) and exchange in mic_codes():
        return VENUE_KINDS["mic"]
    raise UnknownVenue(f"unknown exchange {exchange[:40]!r}: neither a ccxt exchange id (e.g. kraken) "
                       f"nor a MIC with a trading calendar (e.g. XNYS, XSHG, XTAI)")


def check_symbol(exchange: str, symbol: str) -> str:
    """`symbol` if it is well-formed for `exchange`'s kind; ValueError naming the rule otherwise."""
    kind = venue(exchange)
    if not kind.symbol_re.fullmatch(symbol):
        raise ValueError(f"malformed symbol {symbol[:40]!r} for {exchange}: expected {kind.symbol_hint}")
    return symbol


@cache
def trading_calendar(exchange: str) -> ExchangeCalendar | None:
    """`exchange`'s trading calendar (sessions, holidays, early closes), or None for a 24/7 ccxt exchange."""
    if not venue(exchange).has_calendar:
        return None
    from exchange_calendars import get_calendar

    return get_calendar(exchange)
