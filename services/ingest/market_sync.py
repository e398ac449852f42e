"""The market sync: record what the exchange lists, retire what it stopped listing, add what MARKETS_AUTO_ADD names."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from services.core.auto_add import AutoAddRule
from services.core.store.instruments import active_universe, insert_instrument, mark_market_gone, read_instruments
from services.core.store.markets import record_markets
from services.core.venues import PAIR_RE
from services.ingest.sources.base import CandleSource

__all__ = ["MarketSyncReport", "auto_additions", "sync_markets"]

log = logging.getLogger(__name__)
# Names listed per category in a report; the counts are always whole.
_SHOWN = 50


@dataclass
class MarketSyncReport:
    """What one market sync saw and changed."""

    exchange: str
    markets: int = 0
    new: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        lists = {name: getattr(self, name) for name in ("new", "gone", "added", "retired")}
        return {"exchange": self.exchange, "markets": self.markets,
                **{f"{name}_count": len(names) for name, names in lists.items()},
                **{name: names[:_SHOWN] for name, names in lists.items()}}


def auto_additions(markets: list[dict], known: set[str], rule: AutoAddRule | None) -> list[str]:
    """The symbols the rule adds: listed markets it matches that the universe never held (a retired one stays
    retired: an operator retired it), with a symbol candleflow can address."""
    if rule is None:
        return []
    return sorted(market["symbol"] for market in markets
                  if market["symbol"] not in known and PAIR_RE.fullmatch(market["symbol"]) and rule.matches(market))


def sync_markets(source: CandleSource, engine: Engine, rule: AutoAddRule | None,
                 timeframes: list[str]) -> MarketSyncReport:
    """Read the exchange's markets and apply them in one transaction: all of it lands, or none."""
    markets = source.list_markets()
    report = MarketSyncReport(source.name, markets=len(markets))
    listed = {market["symbol"] for market in markets}
    with engine.begin() as conn:
        report.new, report.gone = record_markets(conn, source.name, markets)
        unlisted = [symbol for symbol in active_universe(conn, source.name) if symbol not in listed]
        report.retired = mark_market_gone(conn, source.name, unlisted)
        known = {row["symbol"] for row in read_instruments(conn, exchange=source.name)}
        for symbol in auto_additions(markets, known, rule):
            if insert_instrument(conn, source.name, symbol, timeframes, "market-sync") is not None:
                report.added.append(symbol)
    for symbol in report.retired:
        log.warning("%s no longer lists %s: instrument retired (its data stays; re-activate it with PATCH "
                    "/api/instruments once it is listed again)", source.name, symbol)
    log.info("market sync of %s: %d markets, %d new, %d gone, %d instrument(s) added, %d retired", source.name,
             report.markets, len(report.new), len(report.gone), len(report.added), len(report.retired))
    return report
