"""Bars of one or many series laid end to end as numpy columns: what the strategies read, in one pass per batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["Bars"]


class Bars:
    """Close prices and indicator columns of consecutive bars, and where each series starts.

    A bar's previous bar is the one before it in its own series; the first bar of a
    series has none (NaN, unknown). So a whole batch of instruments is one set of
    arrays, and every rule is elementwise arithmetic over it: one instrument's bars
    give exactly what they give alone.
    """

    def __init__(self, close: Sequence[float] | np.ndarray, columns: Mapping[str, np.ndarray], starts: np.ndarray):
        self.close = np.asarray(close, dtype="float64")
        self.columns = dict(columns)  # as stored (float64, or object for text): the inputs record them as they are
        self.starts = np.asarray(starts, dtype=bool)
        self._numbers: dict[str, np.ndarray] = {}

    @classmethod
    def of_series(cls, candles: pd.DataFrame, indicators: pd.DataFrame) -> Bars:
        """One series: candles' close and every indicator column, on their shared index."""
        starts = np.zeros(len(candles), dtype=bool)
        starts[:1] = True
        return cls(candles["close"].to_numpy("float64"), {col: indicators[col].to_numpy() for col in indicators},
                   starts)

    def __len__(self) -> int:
        return len(self.close)

    def number(self, name: str) -> np.ndarray:
        """Column `name` as float64 (a missing value is NaN)."""
        if name not in self._numbers:
            self._numbers[name] = np.asarray(self.columns[name], dtype="float64")
        return self._numbers[name]

    def text(self, name: str) -> np.ndarray:
        """Column `name` as Python objects, for comparing labels such as the regime."""
        return np.asarray(self.columns[name], dtype=object)

    def previous(self, values: np.ndarray | float) -> np.ndarray | float:
        """Each bar's previous value in its own series (NaN on a series' first bar); a constant stays itself."""
        if np.ndim(values) == 0:
            return values
        before = np.empty(len(values), dtype="float64")
        before[1:] = values[:-1]
        before[self.starts] = np.nan
        return before

    def known(self, needs: Sequence[str]) -> np.ndarray:
        """Bars where every needed column is known, on the bar and on its previous bar."""
        known = np.ones(len(self), dtype=bool)
        for name in needs:
            known &= ~pd.isna(self.columns[name])
        before = np.zeros(len(self), dtype=bool)
        before[1:] = known[:-1]
        before[self.starts] = False
        return known & before
