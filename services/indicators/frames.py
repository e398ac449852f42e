"""Candle frames in, indicator frames out: the checks the engine's input must pass, and its output frame."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from services.indicators.block import INDICATOR_COLUMNS
from services.indicators.regime import regime_labels

__all__ = ["CANDLE_COLUMNS", "PRICE_COLUMNS", "check_index", "checked_prices", "indicator_frame", "price_rows"]

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("high", "low", "close")

# A winter and a summer instant: a zone at offset zero at both is UTC under some name
# (UTC, Etc/UTC, pytz.UTC, …); one with daylight saving is not.
_PROBES = (datetime(2001, 1, 15), datetime(2001, 7, 15))


def check_index(index: pd.Index) -> None:
    """Refuse an index that is not UTC timestamps: mixed zones would misalign bars."""
    tz = index.tz if isinstance(index, pd.DatetimeIndex) else None
    if tz is None or any(tz.utcoffset(probe) != timedelta(0) for probe in _PROBES):
        raise ValueError("candles must be indexed by a UTC DatetimeIndex (ts)")


def checked_prices(candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) of candles the engine can compute on; ValueError naming what is wrong."""
    missing = [column for column in CANDLE_COLUMNS if column not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    index = candles.index
    check_index(index)
    stamps = index.asi8
    if not (stamps[1:] > stamps[:-1]).all():
        raise ValueError("candles must be strictly ascending in ts, without duplicates")
    prices = tuple(candles[column].to_numpy(dtype=np.float64) for column in PRICE_COLUMNS)
    for column, values in zip(PRICE_COLUMNS, prices, strict=True):
        # A NaN would poison every recursive average from that bar on. The sum is
        # finite exactly when every price is (prices are far below float overflow).
        if not np.isfinite(values.sum()):
            raise ValueError(f"candles column {column!r} has NaN or infinite values")
    return prices


def price_rows(prices: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) as (instruments, bars) arrays; every instrument has the same bars."""
    if len(prices) == 1:
        # One instrument: read-only views of its columns, no copy.
        return tuple(values[None, :] for values in prices[0])
    stacked = np.empty((len(PRICE_COLUMNS), len(prices), len(prices[0][0])))
    for row, columns in enumerate(prices):
        for field, values in enumerate(columns):
            stacked[field, row] = values
    return stacked[0], stacked[1], stacked[2]


def indicator_frame(values: np.ndarray, codes: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The public frame from an (18, bars) block and regime codes, without copying the block."""
    frame = pd.DataFrame(values.T, index=index, columns=list(INDICATOR_COLUMNS), copy=False)
    # object dtype keeps None (not NaN) for the warm-up, as the contract says; copy=False
    # because copying a million-element object array costs a reference count per element.
    regime = pd.Series(regime_labels(codes), index=index, dtype=object, copy=False)
    frame.insert(len(INDICATOR_COLUMNS), "regime", regime)
    return frame
