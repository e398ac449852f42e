"""The instruments table (the universe): registering, listing, changing and retiring instruments, and resolving
the one a task or a read names."""

from __future__ import annotations

from sqlalchemy import Connection, text

from services.core.exceptions import CandleflowError
from services.core.timeparse import iso_utc

__all__ = ["SOURCES", "UnknownInstrument", "ensure_instrument", "find_instrument", "require_instrument",
           "resolve_instruments", "seed_instruments", "insert_instrument", "read_instruments", "read_instrument",
           "change_instrument", "active_universe", "mark_market_gone", "instrument_view"]

# Where an instrument came from: SYMBOLS at migrate, the API or the CLI, the market sync's
# MARKETS_AUTO_ADD rule, an ingest before the universe existed (migration 0008), or a file import.
SOURCES = ("config", "api", "cli", "market-sync", "ingest", "import")
_COLUMNS = "id, exchange, symbol, timeframes, active, source, added_at, retired_at, market_gone_at"


def ensure_instrument(conn: Connection, exchange: str, symbol: str, timeframe: str) -> int:
    """The instrument's id, creating it (or adding the timeframe) when needed."""
    return conn.execute(
        text("""
            INSERT INTO instruments (exchange, symbol, timeframes) VALUES (:exchange, :symbol, ARRAY[:tf]::varchar[])
            ON CONFLICT ON CONSTRAINT uq_instruments_exchange_symbol DO UPDATE
               SET timeframes = CASE WHEN :tf = ANY(instruments.timeframes) THEN instruments.timeframes
                                     ELSE array_append(instruments.timeframes, CAST(:tf AS varchar)) END
            RETURNING id
        """),
        {"exchange": exchange, "symbol": symbol, "tf": timeframe},
    ).scalar_one()


def find_instrument(conn: Connection, exchange: str, symbol: str) -> int | None:
    """The instrument's id, or None if it was never ingested."""
    return conn.execute(
        text("SELECT id FROM instruments WHERE exchange = :e AND symbol = :s"), {"e": exchange, "s": symbol}
    ).scalar_one_or_none()


class UnknownInstrument(CandleflowError):
    """The symbol has never been ingested on this exchange."""


def require_instrument(conn: Connection, exchange: str, symbol: str) -> int:
    """The id of (exchange, symbol), or UnknownInstrument saying to ingest it first."""
    instrument_id = find_instrument(conn, exchange, symbol)
    if instrument_id is None:
        raise _unknown(exchange, symbol)
    return instrument_id


def _unknown(exchange: str, symbol: str) -> UnknownInstrument:
    return UnknownInstrument(f"{symbol} on {exchange} has no candles yet; run the ohlc stage (or a backfill) first")


def resolve_instruments(conn: Connection, exchange: str,
                        symbols: list[str]) -> tuple[dict[str, int], dict[str, Exception]]:
    """A batch's instrument ids in one query: (symbol → id, symbol → UnknownInstrument for the rest)."""
    found = dict(conn.execute(text("SELECT symbol, id FROM instruments WHERE exchange = :e AND symbol = ANY(:s)"),
                              {"e": exchange, "s": list(symbols)}).all())
    return ({symbol: found[symbol] for symbol in symbols if symbol in found},
            {symbol: _unknown(exchange, symbol) for symbol in symbols if symbol not in found})


def seed_instruments(conn: Connection, exchange: str, symbols: list[str], timeframes: list[str]) -> list[str]:
    """Add each configured symbol the universe does not hold yet (source config); returns those added.

    An instrument already there is the operator's: its timeframes and active flag are left as they are.
    """
    added = conn.execute(text("""
        INSERT INTO instruments (exchange, symbol, timeframes, source)
        SELECT :exchange, symbol, CAST(:timeframes AS varchar[]), 'config'
          FROM unnest(CAST(:symbols AS varchar[])) AS symbol
        ON CONFLICT ON CONSTRAINT uq_instruments_exchange_symbol DO NOTHING
        RETURNING symbol
    """), {"exchange": exchange, "symbols": list(symbols), "timeframes": list(timeframes)}).scalars().all()
    return sorted(added)


def insert_instrument(conn: Connection, exchange: str, symbol: str, timeframes: list[str], source: str) -> dict | None:
    """A new active instrument's row, or None when (exchange, symbol) is already in the universe."""
    row = conn.execute(text(f"""
        INSERT INTO instruments (exchange, symbol, timeframes, source)
        VALUES (:exchange, :symbol, CAST(:timeframes AS varchar[]), :source)
        ON CONFLICT ON CONSTRAINT uq_instruments_exchange_symbol DO NOTHING
        RETURNING {_COLUMNS}"""),  # nosec B608 - fixed column list
        {"exchange": exchange, "symbol": symbol, "timeframes": list(timeframes), "source": source}).mappings().first()
    return dict(row) if row is not None else None


def read_instruments(conn: Connection, *, active: bool | None = None, exchange: str | None = None,
                     quote: str | None = None) -> list[dict]:
    """The universe, by exchange and symbol, narrowed by active flag, exchange and quote currency."""
    filters = {"active": "active = :active", "exchange": "exchange = :exchange",
               "quote": "split_part(symbol, '/', 2) = :quote"}
    given = {name: value for name, value in (("active", active), ("exchange", exchange), ("quote", quote))
             if value is not None}
    where = f"WHERE {' AND '.join(filters[name] for name in given)}" if given else ""
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM instruments {where} ORDER BY exchange, symbol"),  # nosec B608
                        given).mappings().all()
    return [dict(row) for row in rows]


def read_instrument(conn: Connection, exchange: str, symbol: str) -> dict | None:
    """One instrument's row, or None."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM instruments WHERE exchange = :e AND symbol = :s"),  # nosec B608
                       {"e": exchange, "s": symbol}).mappings().first()
    return dict(row) if row is not None else None


def change_instrument(conn: Connection, exchange: str, symbol: str, *, active: bool | None = None,
                      timeframes: list[str] | None = None) -> dict | None:
    """Set the active flag and/or the timeframes; retiring stamps retired_at, re-activating clears it
    (and the market-gone mark). None when there is no such instrument."""
    row = conn.execute(text(f"""
        UPDATE instruments
           SET active = COALESCE(:active, active),
               timeframes = COALESCE(CAST(:timeframes AS varchar[]), timeframes),
               retired_at = CASE WHEN :active IS NULL THEN retired_at
                                 WHEN :active THEN NULL
                                 ELSE COALESCE(retired_at, now()) END,
               market_gone_at = CASE WHEN :active THEN NULL ELSE market_gone_at END
         WHERE exchange = :exchange AND symbol = :symbol
         RETURNING {_COLUMNS}"""),  # nosec B608 - fixed column list
        {"exchange": exchange, "symbol": symbol, "active": active,
         "timeframes": None if timeframes is None else list(timeframes)}).mappings().first()
    return dict(row) if row is not None else None


def active_universe(conn: Connection, exchange: str) -> dict[str, list[str]]:
    """symbol → timeframes of every active instrument on `exchange`: what a run without a symbol covers."""
    rows = conn.execute(text("SELECT symbol, timeframes FROM instruments WHERE exchange = :e AND active "
                             "ORDER BY symbol"), {"e": exchange}).all()
    return {row.symbol: list(row.timeframes) for row in rows}


def mark_market_gone(conn: Connection, exchange: str, symbols: list[str]) -> list[str]:
    """Retire the active instruments whose market the exchange no longer lists; returns those retired.

    Their data stays; they leave runs, freshness metrics and alerts until an operator re-activates them.
    """
    retired = conn.execute(text("""
        UPDATE instruments SET active = false, retired_at = COALESCE(retired_at, now()), market_gone_at = now()
         WHERE exchange = :e AND symbol = ANY(CAST(:s AS varchar[])) AND active
         RETURNING symbol"""), {"e": exchange, "s": list(symbols)}).scalars().all()
    return sorted(retired)


def instrument_view(row: dict) -> dict:
    """A row as the API and the CLI show it: timestamps in ISO 8601 UTC whatever the session's zone."""
    return {**row, "timeframes": list(row["timeframes"]),
            **{name: iso_utc(row[name]) for name in ("added_at", "retired_at", "market_gone_at")}}
