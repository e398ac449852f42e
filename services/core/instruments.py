"""Resolving the instrument a task was asked about, with an error an operator can act on."""

from __future__ import annotations

from sqlalchemy import Connection

from services.core.exceptions import CandleflowError
from services.core.marketdata import find_instrument

__all__ = ["UnknownInstrument", "require_instrument"]


class UnknownInstrument(CandleflowError):
    """The symbol has never been ingested on this exchange."""


def require_instrument(conn: Connection, exchange: str, symbol: str) -> int:
    """The id of (exchange, symbol), or UnknownInstrument saying to ingest it first."""
    instrument_id = find_instrument(conn, exchange, symbol)
    if instrument_id is None:
        raise UnknownInstrument(f"{symbol} on {exchange} has no candles yet; run the ohlc stage (or a backfill) first")
    return instrument_id
