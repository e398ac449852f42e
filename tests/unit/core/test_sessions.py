"""Session arithmetic on exchange_calendars' real calendars: a holiday week, a half day, a lunch break, a weekend."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.core.sessions import (
    DAY_S,
    bar_close,
    last_open,
    next_after_close,
    next_every_slot,
    next_open,
    trading_age,
    trading_days,
    trading_seconds,
    venue_sessions,
)

ZONES = {"XTAI": "Asia/Taipei", "XNYS": "America/New_York", "XSHG": "Asia/Shanghai"}
HOUR = 3600


def at(exchange: str, local: str) -> float:
    """An instant written in the venue's own clock, as epoch seconds."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(ZONES[exchange])).timestamp()


def local(exchange: str, instant: float | None) -> str | None:
    if instant is None:
        return None
    return datetime.fromtimestamp(instant, ZoneInfo(ZONES[exchange])).strftime("%Y-%m-%d %H:%M")


def slots(exchange: str, start: str, end: str, every: int) -> list[str]:
    """Every slot of an every-N job from `start` to `end` (venue time)."""
    sessions, found = venue_sessions(exchange), []
    fire, until = at(exchange, start), at(exchange, end)
    while (fire := next_every_slot(sessions, fire, every)) is not None and fire <= until:
        found.append(local(exchange, fire))
    return found


def test_an_every_15_minutes_job_on_xtai_skips_the_lunar_new_year_week_and_fires_at_each_open_and_close():
    fired = slots("XTAI", "2026-02-09 00:00", "2026-02-28 00:00", 900)
    days = sorted({slot[:10] for slot in fired})
    # XTAI closes from Thursday 12 February to Friday 20 February 2026 for the Lunar New Year, and on
    # Friday 27 February for Peace Memorial Day (the 28th is a Saturday).
    assert days == ["2026-02-09", "2026-02-10", "2026-02-11", "2026-02-23", "2026-02-24", "2026-02-25",
                    "2026-02-26"]
    on_the_11th = [slot[11:] for slot in fired if slot.startswith("2026-02-11")]
    assert on_the_11th[0] == "09:00" and on_the_11th[-1] == "13:30" and len(on_the_11th) == 19  # 4.5 h / 15 min + 1
    assert len(fired) == 7 * 19
    # From the last slot before the holiday, the next one is the open after it.
    assert local("XTAI", next_every_slot(venue_sessions("XTAI"), at("XTAI", "2026-02-11 13:30"), 900)) \
        == "2026-02-23 09:00"


def test_the_day_after_thanksgiving_stops_at_its_early_close_and_thanksgiving_fires_nothing():
    fired = slots("XNYS", "2026-11-25 00:00", "2026-11-30 23:59", 900)
    assert not [slot for slot in fired if slot.startswith(("2026-11-26", "2026-11-28", "2026-11-29"))]
    friday = [slot[11:] for slot in fired if slot.startswith("2026-11-27")]
    assert (friday[0], friday[-1], len(friday)) == ("09:30", "13:00", 15)  # closed at 13:00 ET, not 16:00
    wednesday = [slot[11:] for slot in fired if slot.startswith("2026-11-25")]
    assert (wednesday[0], wednesday[-1], len(wednesday)) == ("09:30", "16:00", 27)


def test_after_close_fires_half_an_hour_after_each_close_early_ones_included_on_trading_days_only():
    xnys = venue_sessions("XNYS")
    fires, fire = [], at("XNYS", "2026-11-24 12:00")
    while len(fires) < 4:
        fire = next_after_close(xnys, fire, 1800)
        fires.append(local("XNYS", fire))
    assert fires == ["2026-11-24 16:30", "2026-11-25 16:30", "2026-11-27 13:30", "2026-11-30 16:30"]
    # XSHG: Friday 13 February, then the Spring Festival holiday until Tuesday 24 February.
    xshg = venue_sessions("XSHG")
    friday = next_after_close(xshg, at("XSHG", "2026-02-13 12:00"), 1800)
    assert local("XSHG", friday) == "2026-02-13 15:30"
    assert local("XSHG", next_after_close(xshg, friday, 1800)) == "2026-02-24 15:30"


def test_a_lunch_break_is_closed_time_the_afternoon_starts_its_own_slots():
    fired = [slot[11:] for slot in slots("XSHG", "2026-02-10 00:00", "2026-02-10 23:59", 1800)]
    assert fired == ["09:30", "10:00", "10:30", "11:00", "11:30", "13:00", "13:30", "14:00", "14:30", "15:00"]
    xshg = venue_sessions("XSHG")
    assert trading_seconds(xshg, at("XSHG", "2026-02-10 00:00"), at("XSHG", "2026-02-11 00:00")) == 4 * HOUR
    assert trading_seconds(xshg, at("XSHG", "2026-02-10 11:00"), at("XSHG", "2026-02-10 13:30")) == HOUR
    assert next_open(xshg, at("XSHG", "2026-02-10 12:00")) == at("XSHG", "2026-02-10 13:00")
    assert last_open(xshg, at("XSHG", "2026-02-10 12:00")) == at("XSHG", "2026-02-10 09:30")
    assert last_open(xshg, at("XSHG", "2026-02-16 12:00")) == at("XSHG", "2026-02-13 13:00")  # the holiday's eve


def test_a_weekend_has_no_trading_time_and_the_next_open_is_monday():
    xnys = venue_sessions("XNYS")
    friday_close, monday_open = at("XNYS", "2026-11-20 16:00"), at("XNYS", "2026-11-23 09:30")
    assert trading_seconds(xnys, friday_close, monday_open) == 0
    assert trading_seconds(xnys, friday_close, monday_open + HOUR) == HOUR
    assert trading_seconds(xnys, at("XNYS", "2026-11-20 15:00"), at("XNYS", "2026-11-23 10:00")) == 1.5 * HOUR
    assert next_open(xnys, friday_close) == monday_open
    during = at("XNYS", "2026-11-23 11:00")
    assert next_open(xnys, during) == during


@pytest.mark.parametrize(("now", "bars"), [
    ("2026-11-20 20:00", 0.0),    # Friday evening: the Friday bar is the newest there can be
    ("2026-11-22 12:00", 0.0),    # Sunday
    ("2026-11-23 09:30", 0.0),    # Monday's open
    ("2026-11-23 12:45", 0.5),    # half of Monday's session
    ("2026-11-23 16:00", 1.0),    # Monday closed without its bar: one bar behind
    ("2026-11-26 12:00", 3.0),    # Monday to Wednesday missed; Thanksgiving adds nothing
    ("2026-11-27 13:00", 4.0),    # the half day, closed at 13:00, counts as a whole session
    ("2026-11-29 12:00", 4.0),
])
def test_a_daily_bar_ages_by_sessions_each_a_day_weekends_and_holidays_adding_nothing(now, bars):
    xnys = venue_sessions("XNYS")
    friday_bar = datetime(2026, 11, 20, tzinfo=UTC).timestamp()  # daily bars are stamped by session date
    assert bar_close(xnys, friday_bar, DAY_S) == at("XNYS", "2026-11-20 16:00")
    assert trading_age(xnys, friday_bar, DAY_S, at("XNYS", now)) == pytest.approx(bars * DAY_S)


def test_a_daily_xtai_bar_before_the_lunar_new_year_is_not_stale_during_it():
    xtai = venue_sessions("XTAI")
    bar = datetime(2026, 2, 11, tzinfo=UTC).timestamp()
    assert trading_age(xtai, bar, DAY_S, at("XTAI", "2026-02-20 12:00")) == 0
    assert trading_age(xtai, bar, DAY_S, at("XTAI", "2026-02-23 13:30")) == DAY_S
    assert trading_days(xtai, at("XTAI", "2026-02-09 09:00"), at("XTAI", "2026-02-24 09:00")) == 4


def test_an_hourly_bar_ages_in_trading_seconds_from_its_close():
    xnys = venue_sessions("XNYS")
    last_bar = at("XNYS", "2026-11-20 15:30")  # the session's last hour bar, cut short by the 16:00 close
    assert trading_age(xnys, last_bar, HOUR, at("XNYS", "2026-11-21 12:00")) == 0
    assert trading_age(xnys, last_bar, HOUR, at("XNYS", "2026-11-23 11:00")) == 1.5 * HOUR
    mid = at("XNYS", "2026-11-23 10:30")
    assert trading_age(xnys, mid, HOUR, at("XNYS", "2026-11-23 12:00")) == 0.5 * HOUR


def test_past_the_calendars_last_session_there_is_no_next_fire():
    xnys = venue_sessions("XNYS")
    beyond = float(xnys.closes[-1]) + HOUR
    assert next_every_slot(xnys, beyond, 900) is None
    assert next_after_close(xnys, beyond, 1800) is None
    assert next_open(xnys, beyond) is None


def test_a_ccxt_exchange_has_no_sessions():
    assert venue_sessions("kraken") is None
