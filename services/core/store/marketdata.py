"""Reading stored candles and indicator values as DataFrames (the analysis stages' input)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, text

from services.core.models import INDICATOR_COLUMNS

__all__ = ["load_candles", "load_indicators"]

_OHLCV = ("open", "high", "low", "close", "volume")
# ts as epoch milliseconds: converted to a DatetimeIndex in one vectorised step.
_TS_MS = "(extract(epoch FROM ts) * 1000)::bigint"


def _frame(conn: Connection, sql: str, params: dict, columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows of `SELECT <_TS_MS>, <columns>` as a frame indexed by ts.

    This runs once per instrument per stage, thousands of times an hour, so it reads
    the driver's plain tuples and converts ts as integers in one vectorised step
    instead of building SQLAlchemy rows and Python datetimes.
    """
    rows = conn.execute(text(sql), params).cursor.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["ts", *columns])
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("ts").to_numpy("int64"), unit="ms", utc=True),
                                   name="ts")
    return frame


def _bars_back(conn: Connection, instrument_id: int, timeframe: str, since: datetime, bars: int) -> datetime | None:
    # Counted by position, not by clock, so gaps in the data never shorten a warm-up.
    return conn.execute(
        text("""SELECT ts FROM candles WHERE instrument_id = :i AND timeframe = :tf AND ts < :since
                ORDER BY ts DESC OFFSET :skip LIMIT 1"""),
        {"i": instrument_id, "tf": timeframe, "since": since, "skip": bars - 1},
    ).scalar_one_or_none()


def load_candles(conn: Connection, instrument_id: int, timeframe: str,
                 since: datetime | None = None, bars_before: int = 0) -> pd.DataFrame:
    """Candles from `bars_before` bars before `since` onward (all when since is None), ascending.

    Columns open, high, low, close, volume (float64) and is_closed (bool). When
    fewer than `bars_before` bars precede `since`, the whole history is returned.
    """
    if since is not None and bars_before > 0:
        since = _bars_back(conn, instrument_id, timeframe, since, bars_before)
    sql = f"""SELECT {_TS_MS}, {', '.join(_OHLCV)}, is_closed FROM candles
               WHERE instrument_id = :i AND timeframe = :tf {'' if since is None else 'AND ts >= :since'}
               ORDER BY ts"""
    frame = _frame(conn, sql, {"i": instrument_id, "tf": timeframe, "since": since}, (*_OHLCV, "is_closed"))
    return _typed(frame, {name: "float64" for name in _OHLCV} | {"is_closed": "bool"})


def load_indicators(conn: Connection, instrument_id: int, timeframe: str,
                    since: datetime | None = None) -> pd.DataFrame:
    """Stored indicator rows from `since` on: the indicator columns, regime and is_closed."""
    sql = f"""SELECT {_TS_MS}, {', '.join(INDICATOR_COLUMNS)}, regime, is_closed FROM indicator_values
               WHERE instrument_id = :i AND timeframe = :tf {'' if since is None else 'AND ts >= :since'}
               ORDER BY ts"""
    frame = _frame(conn, sql, {"i": instrument_id, "tf": timeframe, "since": since},
                   (*INDICATOR_COLUMNS, "regime", "is_closed"))
    return _typed(frame, {name: "float64" for name in INDICATOR_COLUMNS})


def _typed(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    # astype() costs milliseconds even when nothing changes; cast only what differs
    # (an empty result, or a column with NULLs).
    differing = {name: dtype for name, dtype in dtypes.items() if frame[name].dtype != dtype}
    return frame.astype(differing) if differing else frame
