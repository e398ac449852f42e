"""Trading sessions of a calendar venue, and pure functions over them: next open, next fire, trading time."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from services.core.venues import trading_calendar

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

__all__ = ["Sessions", "DAY_S", "sessions_of", "venue_sessions", "next_open", "last_open", "next_every_slot",
           "next_after_close", "trading_seconds", "trading_days", "bar_close", "trading_age"]

DAY_S = 86400


@dataclass(frozen=True, eq=False)
class Sessions:
    """A venue's sessions in epoch seconds, UTC, in time order.

    A session with a lunch break (XSHG, XHKG) is two trading intervals in `starts`/`ends`.
    With the prefix sums, trading time between two instants is two binary searches, whatever
    their distance. Tuples of floats, not arrays: `bisect` on them is an order of magnitude
    quicker than numpy's searchsorted on one value, and the exporter asks once per instrument.
    """

    labels: tuple[float, ...]   # each session's date, as epoch seconds of its UTC midnight
    closes: tuple[float, ...]   # early closes included: the calendar's, not the usual hours
    starts: tuple[float, ...]   # trading intervals
    ends: tuple[float, ...]
    seconds_before: tuple[float, ...]  # trading seconds in the intervals before each one
    days_before: tuple[float, ...]     # sessions' worth of trading before each interval
    day_rates: tuple[float, ...]       # sessions' worth per trading second, per interval: 1 / its session's length


def _epoch(column) -> np.ndarray:
    # The UTC instants as epoch seconds; NaT (no break) becomes the int64 minimum, masked by the caller.
    return column.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(values.astype(np.float64).tolist())


def sessions_of(calendar: ExchangeCalendar) -> Sessions:
    """The calendar's sessions, lunch breaks split out, in the form the functions below search."""
    schedule = calendar.schedule
    labels = schedule.index.values.astype("datetime64[s]").astype(np.int64)
    opens, closes = _epoch(schedule["open"]), _epoch(schedule["close"])
    has_break = schedule["break_start"].notna().to_numpy()
    break_starts, break_ends = _epoch(schedule["break_start"]), _epoch(schedule["break_end"])
    index = np.arange(len(opens))
    # Morning (or whole-day) intervals, then afternoons of sessions with a break, merged in time order.
    starts = np.concatenate([opens, break_ends[has_break]])
    ends = np.concatenate([np.where(has_break, break_starts, closes), closes[has_break]])
    session_of = np.concatenate([index, index[has_break]])
    order = np.argsort(starts, kind="stable")
    starts, ends, session_of = starts[order], ends[order], session_of[order]
    lengths = ends - starts
    day_rates = 1.0 / np.bincount(session_of, weights=lengths, minlength=len(opens))[session_of]
    return Sessions(_floats(labels), _floats(closes), _floats(starts), _floats(ends),
                    _floats(np.concatenate([[0], np.cumsum(lengths)[:-1]])),
                    _floats(np.concatenate([[0.0], np.cumsum(lengths * day_rates)[:-1]])), _floats(day_rates))


@cache
def venue_sessions(exchange: str) -> Sessions | None:
    """The sessions of a MIC venue, built once per process; None for a 24/7 ccxt exchange."""
    calendar = trading_calendar(exchange)
    return None if calendar is None else sessions_of(calendar)


def next_open(sessions: Sessions, after: float) -> float | None:
    """The first instant at or after `after` at which the venue trades (`after` itself while it is open);
    None past the calendar's last session."""
    i = bisect_right(sessions.ends, after)
    if i == len(sessions.ends):
        return None
    return max(after, sessions.starts[i])


def last_open(sessions: Sessions, at: float) -> float | None:
    """When the venue last began trading at or before `at` (a session's open, or its afternoon's after a
    lunch break); None before the calendar's first session."""
    i = bisect_right(sessions.starts, at) - 1
    return sessions.starts[i] if i >= 0 else None


def next_every_slot(sessions: Sessions, after: float, every: int) -> float | None:
    """The first slot after `after` of a job firing every `every` seconds while the venue is open.

    Slots are each trading interval's start, then every `every` seconds up to and including its
    end: the open, …, the close (an early one on a half day); after a lunch break they start
    again at the afternoon's open. None past the calendar's last session.
    """
    i = bisect_right(sessions.ends, after)
    while i < len(sessions.starts):
        start, end = sessions.starts[i], sessions.ends[i]
        if after < start:
            return start
        slot = start + ((after - start) // every + 1) * every
        if slot <= end:
            return slot
        i += 1
    return None


def next_after_close(sessions: Sessions, after: float, delay: int) -> float | None:
    """The first session close + `delay` seconds after `after`; half days fire after their early close."""
    i = bisect_right(sessions.closes, after - delay)
    return sessions.closes[i] + delay if i < len(sessions.closes) else None


def _cumulative(sessions: Sessions, at: float, prefix: tuple[float, ...], rates: tuple[float, ...] | None) -> float:
    # Trading before `at` since the first session, on the scale `prefix` counts in (`rates` per second).
    i = bisect_right(sessions.starts, at) - 1
    if i < 0:
        return 0.0
    start, end = sessions.starts[i], sessions.ends[i]
    return prefix[i] + (min(at, end) - start) * (1.0 if rates is None else rates[i])


def trading_seconds(sessions: Sessions, start: float, end: float) -> float:
    """Seconds in [start, end) during which the venue trades (nights, weekends, holidays, breaks excluded)."""
    if end <= start:
        return 0.0
    return (_cumulative(sessions, end, sessions.seconds_before, None)
            - _cumulative(sessions, start, sessions.seconds_before, None))


def trading_days(sessions: Sessions, start: float, end: float) -> float:
    """Sessions' worth of trading in [start, end): a whole session (a half day too) counts 1, part of one pro rata."""
    if end <= start:
        return 0.0
    return (_cumulative(sessions, end, sessions.days_before, sessions.day_rates)
            - _cumulative(sessions, start, sessions.days_before, sessions.day_rates))


def bar_close(sessions: Sessions, ts: float, length: int) -> float:
    """When a bar opening at `ts` closed. A bar of a day or more is stamped by its first session's date
    and closes with the last session it covers; a shorter one closes `length` after it opens."""
    if length < DAY_S:
        return ts + length
    label = ts - ts % DAY_S
    i = bisect_left(sessions.labels, label + length) - 1
    if i < 0 or sessions.labels[i] < label:
        return ts + length  # no session in the bar: nothing to anchor it to
    return sessions.closes[i]


def trading_age(sessions: Sessions, ts: float, length: int, now: float) -> float:
    """How old a bar opening at `ts` is in the venue's trading time, in seconds of the bar's own clock.

    Bars shorter than a day age by trading seconds. Daily and longer bars age by sessions, each
    counted as a day (86,400 s), so an age reads in bars as it does for a 24/7 market: one
    session without a new daily bar makes it one bar older, a weekend or a holiday none.
    """
    closed = bar_close(sessions, ts, length)
    if length < DAY_S:
        return trading_seconds(sessions, closed, now)
    return trading_days(sessions, closed, now) * DAY_S
