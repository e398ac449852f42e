"""The indicator_state table: stored recursion states, read for a batch in one query and written in one upsert."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from services.core.store.bulk import copy_upsert
from services.indicators.state import IndicatorState

__all__ = ["StoredSeries", "read_series", "write_states"]

_KEYS = ("instrument_id", "timeframe")
_COLUMNS = (*_KEYS, "last_ts", "params_fingerprint", "state")


@dataclass(frozen=True)
class StoredSeries:
    """What is stored about one series before an update: its state (if any) and its stage watermark."""

    state: IndicatorState | None
    watermark: datetime | None


def read_series(conn: Connection, instrument_ids: Sequence[int], timeframe: str, stage: str) -> dict[int, StoredSeries]:
    """{instrument id: its stored state and `stage`'s watermark} for every id, in one query."""
    rows = conn.execute(text("""
        SELECT i.id, s.last_ts, s.params_fingerprint, s.state, w.last_ts
          FROM unnest(CAST(:ids AS integer[])) AS i(id)
          LEFT JOIN indicator_state s ON s.instrument_id = i.id AND s.timeframe = :tf
          LEFT JOIN stage_watermarks w ON w.instrument_id = i.id AND w.timeframe = :tf AND w.stage = :stage"""),
        {"ids": list(instrument_ids), "tf": timeframe, "stage": stage}).all()
    return {instrument_id: StoredSeries(_state(last_ts, fingerprint, vector), watermark)
            for instrument_id, last_ts, fingerprint, vector, watermark in rows}


def _state(last_ts: datetime | None, fingerprint: str | None, vector: list[float] | None) -> IndicatorState | None:
    if last_ts is None:
        return None
    return IndicatorState(pd.Timestamp(last_ts).tz_convert("UTC"), fingerprint, np.array(vector, dtype=np.float64))


def write_states(conn: Connection, timeframe: str, states: Iterable[tuple[int, IndicatorState]]) -> int:
    """Upsert each instrument's state; returns how many rows changed.

    A state is never replaced by one that ends earlier (a slower computation that
    finishes last), and an identical state is not rewritten, so a redelivered
    batch writes nothing.
    """
    rows = ((instrument_id, timeframe, state.last_ts.to_pydatetime(), state.fingerprint, _array_literal(state.vector))
            for instrument_id, state in states)
    return copy_upsert(conn, "indicator_state", _COLUMNS, _KEYS, rows,
                       update=("last_ts", "params_fingerprint", "state"), stamp="updated_at",
                       update_where="t.last_ts <= EXCLUDED.last_ts")


def _array_literal(vector: np.ndarray) -> str:
    """A float8[] literal that round-trips every double: repr is the shortest exact decimal."""
    return "{" + ",".join(map(repr, vector.tolist())) + "}"
