"""Reading stored candles and indicator values as DataFrames (the analysis stages' input)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from services.core.models import INDICATOR_COLUMNS
from services.core.timeparse import datetime_to_ms

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["newest_closed_ts", "load_candles", "load_candles_batch", "load_indicators"]

# bandit B608 (marked nosec below): the f-strings interpolate only this module's column lists and
# fixed clauses; every value is a bound parameter.

_OHLCV = ("open", "high", "low", "close", "volume")
# ts as epoch milliseconds: converted to a DatetimeIndex in one vectorised step.
_TS_MS = "(extract(epoch FROM ts) * 1000)::bigint"


def _frame(conn: Connection, sql: str, params: dict, columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows of `SELECT <_TS_MS>, <columns>` as a frame indexed by ts.

    This runs once per instrument per stage, thousands of times an hour, so it reads
    the driver's plain tuples and converts ts as integers in one vectorised step
    instead of building SQLAlchemy rows and Python datetimes.
    """
    # Imported here: the ingest worker reads only newest_closed_ts from this module and
    # would otherwise carry pandas (about 40 MB a process) for nothing.
    import pandas as pd

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


def newest_closed_ts(conn: Connection, instrument_ids: list[int], timeframe: str) -> dict[int, int]:
    """Per instrument, open time (ms) of its newest closed candle; instruments with none are absent.

    One probe per instrument down the primary key from its newest bar, not a scan of its history.
    """
    rows = conn.execute(text("""
        SELECT i.id, (SELECT max(c.ts) FROM candles c
                       WHERE c.instrument_id = i.id AND c.timeframe = :tf AND c.is_closed)
          FROM unnest(CAST(:ids AS integer[])) AS i(id)"""), {"ids": list(instrument_ids), "tf": timeframe}).all()
    return {instrument_id: datetime_to_ms(ts) for instrument_id, ts in rows if ts is not None}


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
               ORDER BY ts"""  # nosec B608
    frame = _frame(conn, sql, {"i": instrument_id, "tf": timeframe, "since": since}, (*_OHLCV, "is_closed"))
    return _typed(frame, {name: "float64" for name in _OHLCV} | {"is_closed": "bool"})


def load_candles_batch(conn: Connection, timeframe: str, since: Mapping[int, datetime | None],
                       bars_before: int = 0) -> pd.DataFrame:
    """load_candles for many instruments: {instrument id: since} in, one frame out, in one query.

    Rows are grouped by instrument (column instrument_id, ascending ids) and
    ascending in ts within each; the other columns are load_candles'. As there, a
    `since` of None means the whole history, and fewer than `bars_before` bars
    before `since` means the whole history too. A lookback costs one index walk per
    instrument first (its own small query, as load_candles does).
    """
    starts = dict(since)
    if bars_before > 0:
        starts = {instrument_id: None if at is None else _bars_back(conn, instrument_id, timeframe, at, bars_before)
                  for instrument_id, at in starts.items()}
    # LATERAL with its own ORDER BY, so the planner cannot flatten it into a join that
    # hashes the whole candles table: each instrument is one primary-key range scan,
    # O(the rows it returns). Ordering by the (ascending) ids' ordinality keeps the
    # final sort incremental: each instrument's rows already come sorted by ts.
    sql = f"""SELECT (extract(epoch FROM c.ts) * 1000)::bigint, w.instrument_id,
                     {', '.join(f'c.{name}' for name in _OHLCV)}, c.is_closed
                FROM unnest(CAST(:ids AS integer[]), CAST(:since AS timestamptz[]))
                     WITH ORDINALITY AS w(instrument_id, since, position)
               CROSS JOIN LATERAL (
                     SELECT * FROM candles c
                      WHERE c.instrument_id = w.instrument_id AND c.timeframe = :tf
                        AND c.ts >= coalesce(w.since, '-infinity')
                      ORDER BY c.ts) AS c
               ORDER BY w.position, c.ts"""  # nosec B608
    ordered = sorted(starts)
    params = {"ids": [int(i) for i in ordered], "since": [starts[i] for i in ordered], "tf": timeframe}
    frame = _frame(conn, sql, params, ("instrument_id", *_OHLCV, "is_closed"))
    return _typed(frame, {"instrument_id": "int64"} | {name: "float64" for name in _OHLCV} | {"is_closed": "bool"})


def load_indicators(conn: Connection, instrument_id: int, timeframe: str,
                    since: datetime | None = None) -> pd.DataFrame:
    """Stored indicator rows from `since` on: the indicator columns, regime and is_closed."""
    sql = f"""SELECT {_TS_MS}, {', '.join(INDICATOR_COLUMNS)}, regime, is_closed FROM indicator_values
               WHERE instrument_id = :i AND timeframe = :tf {'' if since is None else 'AND ts >= :since'}
               ORDER BY ts"""  # nosec B608
    frame = _frame(conn, sql, {"i": instrument_id, "tf": timeframe, "since": since},
                   (*INDICATOR_COLUMNS, "regime", "is_closed"))
    return _typed(frame, {name: "float64" for name in INDICATOR_COLUMNS})


def _typed(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    # astype() costs milliseconds even when nothing changes; cast only what differs
    # (an empty result, or a column with NULLs).
    differing = {name: dtype for name, dtype in dtypes.items() if frame[name].dtype != dtype}
    return frame.astype(differing) if differing else frame
