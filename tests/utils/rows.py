"""Reading a database from tests that hold only its URL (the stack's processes own the engine)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

__all__ = ["STAGE_ROWS", "one_row"]

# Rows each pipeline stage writes: candles, indicator values, signals (and instruments signalled).
STAGE_ROWS = """SELECT (SELECT count(*) FROM candles), (SELECT count(*) FROM indicator_values),
                       (SELECT count(*) FROM signals), (SELECT count(DISTINCT instrument_id) FROM signals)"""


def one_row(database_url: str, sql: str) -> tuple:
    """The single row `sql` returns, read on a throwaway engine."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(sql)).one())
    finally:
        engine.dispose()
