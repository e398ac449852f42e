"""A calendar venue's bars and its sessions: daily bars stamped by session date (00:00 UTC), intraday bars checked
against its trading hours."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

__all__ = ["session_dates", "sessions_mask", "trading_hours_mask", "DAY_MS"]

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
    """True where the day (00:00 UTC ms) is one of the calendar's sessions (a half day is one).

    One binary search of the sorted sessions for all the days at once, not a lookup per row.
    """
    sessions = calendar.sessions.as_unit("ms").asi8
    at = np.minimum(np.searchsorted(sessions, days_ms), len(sessions) - 1)
    return sessions[at] == days_ms


def trading_hours_mask(ts_ms: np.ndarray, calendar: ExchangeCalendar) -> np.ndarray:
    """True where an intraday bar starts while the venue trades: in its local day's session, from the open to
    the close (the early close of a half day), outside a lunch break (XSHG 11:30-13:00)."""
    schedule = calendar.schedule
    labels = schedule.index.as_unit("ms").asi8
    local = pd.DatetimeIndex(pd.to_datetime(ts_ms, unit="ms", utc=True)).tz_convert(calendar.tz).tz_localize(None)
    days = local.normalize().as_unit("ms").asi8
    at = np.minimum(np.searchsorted(labels, days), len(labels) - 1)
    is_session = labels[at] == days

    def column(name: str) -> np.ndarray:
        # NaT (no break that day) as the int64 minimum: a range from it to itself holds nothing.
        return schedule[name].dt.as_unit("ms").to_numpy(np.int64, na_value=np.iinfo(np.int64).min)[at]

    in_hours = (ts_ms >= column("open")) & (ts_ms < column("close"))
    in_break = (ts_ms >= column("break_start")) & (ts_ms < column("break_end"))
    return is_session & in_hours & ~in_break
