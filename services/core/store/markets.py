"""The markets table: what the exchange lists, as the last market sync saw it."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

__all__ = ["MARKET_FIELDS", "record_markets", "read_markets", "listed_symbols", "markets_synced"]

# One market as the sync records it (ccxt's unified market, reduced to what an operator reads).
MARKET_FIELDS = ("symbol", "market_id", "base", "quote", "type", "active", "precision")
_COLUMNS = "exchange, symbol, market_id, base, quote, type, active, precision, first_seen_at, last_seen_at, gone_at"


def record_markets(conn: Connection, exchange: str, markets: list[dict]) -> tuple[list[str], list[str]]:
    """Upsert the exchange's listed markets and mark the ones it stopped listing as gone.

    Returns (symbols new or listed again, symbols gone in this sync). An empty list is refused:
    an exchange answering with no market at all is an outage, not every market delisted.
    """
    if not markets:
        raise ValueError(f"{exchange} listed no market; nothing recorded (an empty list is taken as an outage)")
    rows = [{**{name: market.get(name) for name in MARKET_FIELDS}, "precision": json.dumps(market.get("precision")
                                                                                         or {})} for market in markets]
    before = set(conn.execute(text("SELECT symbol FROM markets WHERE exchange = :e AND gone_at IS NULL"),
                              {"e": exchange}).scalars())
    conn.execute(text("""
        INSERT INTO markets (exchange, symbol, market_id, base, quote, type, active, precision)
        VALUES (:exchange, :symbol, :market_id, :base, :quote, :type, :active, CAST(:precision AS jsonb))
        ON CONFLICT (exchange, symbol) DO UPDATE
           SET market_id = EXCLUDED.market_id, base = EXCLUDED.base, quote = EXCLUDED.quote, type = EXCLUDED.type,
               active = EXCLUDED.active, precision = EXCLUDED.precision, last_seen_at = now(), gone_at = NULL
    """), [{"exchange": exchange, **row} for row in rows])
    listed = {row["symbol"] for row in rows}
    gone = sorted(before - listed)
    if gone:
        conn.execute(text("UPDATE markets SET gone_at = now() "
                          "WHERE exchange = :e AND symbol = ANY(CAST(:s AS varchar[]))"), {"e": exchange, "s": gone})
    return sorted(listed - before), gone


def read_markets(conn: Connection, exchange: str, *, quote: str | None = None, market_type: str | None = None,
                 listed: bool | None = None) -> list[dict]:
    """The exchange's markets by symbol, narrowed by quote, type, and whether the exchange still lists them."""
    filters = {"quote": "quote = :quote", "type": "type = :type",
               "listed": "(gone_at IS NULL) = :listed"}
    given = {name: value for name, value in (("quote", quote), ("type", market_type), ("listed", listed))
             if value is not None}
    where = "".join(f" AND {filters[name]}" for name in given)
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM markets WHERE exchange = :exchange{where} "  # nosec B608
                             "ORDER BY symbol"), {"exchange": exchange, **given}).mappings().all()
    return [dict(row) for row in rows]


def listed_symbols(conn: Connection, exchange: str, symbols: list[str]) -> set[str]:
    """Which of `symbols` the exchange lists now (by the last market sync)."""
    rows = conn.execute(text("SELECT symbol FROM markets WHERE exchange = :e AND gone_at IS NULL "
                             "AND symbol = ANY(CAST(:s AS varchar[]))"), {"e": exchange, "s": list(symbols)})
    return set(rows.scalars())


def markets_synced(conn: Connection, exchange: str) -> bool:
    """Whether a market sync of `exchange` ever recorded anything."""
    return conn.execute(text("SELECT EXISTS (SELECT 1 FROM markets WHERE exchange = :e)"), {"e": exchange}).scalar_one()
