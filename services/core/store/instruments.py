"""The instruments table: registering an instrument, and resolving the one a task or a read names."""

from __future__ import annotations

from sqlalchemy import Connection, text

from services.core.exceptions import CandleflowError

__all__ = ["UnknownInstrument", "ensure_instrument", "find_instrument", "require_instrument", "resolve_instruments"]


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
