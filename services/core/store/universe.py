"""The universe's rules: what may be added (a listed market), and what an ad-hoc run may name (active instruments)."""

from __future__ import annotations

from sqlalchemy import Connection

from services.core.exceptions import CandleflowError
from services.core.store.instruments import change_instrument, insert_instrument, read_instrument
from services.core.store.markets import listed_symbols, markets_synced
from services.core.venues import venue

__all__ = ["UniverseError", "ADD_HINT", "require_listed", "add_instrument", "admit_scope"]

ADD_HINT = ("add it with POST /api/instruments (or `candleflow instruments add`), or pass add=true to add it with "
            "this run")


class UniverseError(CandleflowError):
    """A change or a run the universe refuses; `parameter` names the field at fault, `status` the HTTP answer."""

    def __init__(self, parameter: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.status = status


def require_listed(conn: Connection, exchange: str, symbols: list[str]) -> None:
    """UniverseError unless the last market sync saw every symbol listed on `exchange`."""
    if not markets_synced(conn, exchange):
        raise UniverseError("symbol", f"the market list of {exchange} has not been synced yet, so no symbol can be "
                                      "checked: run the market sync (`candleflow markets sync`, or POST "
                                      "/api/schedules/markets-sync-daily/run) and try again", 409)
    missing = sorted(set(symbols) - listed_symbols(conn, exchange, symbols))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise UniverseError("symbol", f"{exchange} does not list {shown} (by its last market sync); "
                                      "see GET /api/markets for what it lists")


def add_instrument(conn: Connection, exchange: str, symbol: str, timeframes: list[str], source: str) -> dict:
    """Add a listed market to the universe, active; 409 if it is already there (change it with PATCH)."""
    require_listed(conn, exchange, [symbol])
    row = insert_instrument(conn, exchange, symbol, timeframes, source)
    if row is None:
        raise UniverseError("symbol", f"{symbol} on {exchange} is already in the universe; change it with "
                                      f"PATCH /api/instruments/{exchange}/{symbol}", 409)
    return row


def admit_scope(conn: Connection, exchange: str, symbols: list[str] | None, timeframes: list[str] | None,
                add: bool, source: str, default_timeframes: list[str]) -> list[str]:
    """Check that an ad-hoc run names only active instruments that keep its timeframes.

    With `add`, what is missing is made so instead (a listed market added, a retired instrument
    re-activated, a timeframe added); returns what was changed, one line each. Without it, a
    UniverseError says what is missing and how to add it: never a half-registered instrument.
    """
    if not symbols:
        return []  # a run over the universe covers what is active, by definition
    rows = {symbol: read_instrument(conn, exchange, symbol) for symbol in symbols}
    unknown = [symbol for symbol, row in rows.items() if row is None]
    if unknown and not venue(exchange).fetches:  # no market list to check a ticker against: its file adds it
        raise UniverseError("symbol", f"{', '.join(unknown[:10])} on {exchange} is not in the universe: a stock "
                                      "venue's instruments are added by importing their candles (candleflow import, "
                                      "POST /api/imports)")
    retired = [symbol for symbol, row in rows.items() if row is not None and not row["active"]]
    lacking = {symbol: [tf for tf in timeframes if tf not in row["timeframes"]]
               for symbol, row in rows.items() if row is not None and timeframes}
    lacking = {symbol: tfs for symbol, tfs in lacking.items() if tfs}
    if not add:
        if unknown:
            raise UniverseError("symbol", f"{', '.join(unknown[:10])} on {exchange} is not in the universe: {ADD_HINT}")
        if retired:
            raise UniverseError("symbol", f"{', '.join(retired[:10])} on {exchange} is retired: re-activate it with "
                                          f"PATCH /api/instruments/{exchange}/<symbol> {{\"active\": true}}, or pass "
                                          "add=true")
        if lacking:
            symbol, tfs = next(iter(lacking.items()))
            raise UniverseError("timeframe", f"{symbol} on {exchange} does not keep {', '.join(tfs)} (it keeps "
                                             f"{', '.join(rows[symbol]['timeframes'])}): add the timeframe with PATCH "
                                             f"/api/instruments/{exchange}/{symbol}, or pass add=true")
        return []
    if unknown:
        require_listed(conn, exchange, unknown)
    changes = []
    for symbol in unknown:
        insert_instrument(conn, exchange, symbol, timeframes or default_timeframes, source)
        changes.append(f"added {symbol} ({', '.join(timeframes or default_timeframes)})")
    for symbol in retired:
        change_instrument(conn, exchange, symbol, active=True)
        changes.append(f"re-activated {symbol}")
    for symbol, tfs in lacking.items():
        change_instrument(conn, exchange, symbol, timeframes=[*rows[symbol]["timeframes"], *tfs])
        changes.append(f"added {', '.join(tfs)} to {symbol}")
    return changes
