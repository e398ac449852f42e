"""Daily bars of a calendar venue stamped by session: the session's date at 00:00 UTC, whatever the venue's zone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

__all__ = ["session_dates", "sessions_mask", "DAY_MS"]

DAY_MS = 86_400_000


def session_dates(ts_ms: np.ndarray, zone: object) -> np.ndarray:
    """The date each instant names, as epoch ms of that date's 00:00 UTC.

    An instant at 00:00 UTC is a date as written (2026-11-27, 20261127, epoch of that midnight);
    any other is read as the venue's wall clock: 2026-11-27T16:00-05:00 (New York's close) and
    2026-10-09T00:00+08:00 (Shanghai's midnight, 16:00 UTC the day before) each name that day.
    """
    midnight = ts_ms % DAY_MS == 0
    if midnight.all():
        return ts_ms
    local = pd.DatetimeIndex(pd.to_datetime(ts_ms, unit="ms", utc=True)).tz_convert(zone).tz_localize(None)
    local_days = local.normalize().as_unit("ms").asi8
    return np.where(midnight, ts_ms, local_days)


def sessions_mask(days_ms: np.ndarray, calendar: ExchangeCalendar) -> np.ndarray:
    """True where the day (00:00 UTC ms) is one of the calendar's sessions (a half day is one)."""
    sessions = calendar.sessions.as_unit("ms").asi8
    return np.isin(days_ms, sessions)
