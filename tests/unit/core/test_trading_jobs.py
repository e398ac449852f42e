"""Trading jobs: while a venue is open or after its close, validated like any job, due only inside sessions."""

from datetime import UTC, datetime, timedelta

import pytest

from services.core.pipeline.job_plan import seed_jobs
from services.core.pipeline.jobs import (
    InvalidJob,
    TradingSchedule,
    apply_patch,
    job_schedule,
    next_due,
    parse_job,
    schedule_changed,
)


def trading_job(trading=None, **fields):
    return parse_job({"name": "tw-quotes", "task": "all", "trading": trading or {"exchange": "XTAI", "every": 900},
                      **fields})


def test_a_trading_job_reads_and_writes_its_shape_on_its_venues_clock():
    job = trading_job()
    assert job.spec() == {"name": "tw-quotes", "task": "all", "scope": {},
                          "trading": {"exchange": "XTAI", "every": 900}, "timezone": "Asia/Taipei", "enabled": True,
                          "priority": 5}
    assert parse_job(job.spec()) == job
    closing = trading_job({"exchange": "XSHG", "after_close": 1800})
    assert closing.spec()["trading"] == {"exchange": "XSHG", "after_close": 1800}
    assert closing.timezone == "Asia/Shanghai"


@pytest.mark.parametrize(("trading", "field", "words"), [
    ({"exchange": "XQQQ", "every": 900}, "trading.exchange", "unknown exchange"),
    ({"exchange": "kraken", "every": 900}, "trading.exchange", "use every or cron"),
    ({"exchange": "XTAI", "every": 9}, "trading.every", "from 10 to 86400"),
    ({"exchange": "XTAI", "every": 86401}, "trading.every", "from 10 to 86400"),
    ({"exchange": "XTAI", "after_close": -1}, "trading.after_close", "from 0 to 86400"),
    ({"exchange": "XTAI", "every": 900, "after_close": 60}, "trading.after_close", "not both"),
    ({"exchange": "XTAI"}, "trading.every", "one of every"),
    ({"every": 900}, "trading.exchange", "required"),
    ({"exchange": "XTAI", "every": "900"}, "trading.every", "an integer"),
    ({"exchange": "XTAI", "every": 900, "open": True}, "trading.open", "allowed: exchange, every, after_close"),
    ("XTAI", "trading", "an object"),
])
def test_a_bad_trading_when_is_refused_naming_its_field(trading, field, words):
    with pytest.raises(InvalidJob, match=words) as refused:
        trading_job(trading)
    assert refused.value.field == field


def test_a_trading_job_takes_no_other_when_and_no_zone_but_its_venues():
    with pytest.raises(InvalidJob, match="not cron and trading") as refused:
        trading_job(cron="5 * * * *")
    assert refused.value.field == "trading"
    with pytest.raises(InvalidJob, match=r"XTAI's clock \(Asia/Taipei\)") as refused:
        trading_job(timezone="UTC")
    assert refused.value.field == "timezone"
    assert trading_job(timezone="Asia/Taipei") == trading_job()


def test_a_patch_swaps_cron_every_and_trading_and_the_zone_follows_the_venue():
    cron = parse_job({"name": "tw-quotes", "task": "all", "cron": "*/15 9-13 * * mon-fri", "timezone": "Asia/Taipei"})
    to_trading = apply_patch(cron, {"trading": {"exchange": "XNYS", "every": 900}})
    assert (to_trading.cron, to_trading.trading.exchange, to_trading.timezone) == (None, "XNYS", "America/New_York")
    moved = apply_patch(to_trading, {"trading": {"exchange": "XSHG", "after_close": 600}})
    assert moved.timezone == "Asia/Shanghai" and moved.trading.every is None
    back = apply_patch(moved, {"every": 600}, "Europe/Berlin")
    assert (back.trading, back.every, back.timezone) == (None, 600, "Europe/Berlin")
    assert apply_patch(moved, {"priority": 9}).trading == moved.trading
    with pytest.raises(InvalidJob, match="not every and trading") as refused:
        apply_patch(cron, {"every": 60, "trading": {"exchange": "XTAI", "every": 900}})
    assert refused.value.field == "trading"
    assert schedule_changed(to_trading, moved) and not schedule_changed(moved, apply_patch(moved, {"priority": 9}))


def test_an_override_can_move_a_default_job_onto_a_venues_sessions():
    seed = seed_jobs({"pipeline-all-hourly": {"trading": {"exchange": "XNYS", "after_close": 1800}}}, "UTC")
    job = seed["pipeline-all-hourly"].job
    assert (job.cron, job.trading.after_close, job.timezone) == (None, 1800, "America/New_York")


def test_next_run_at_skips_a_weekend_and_a_holiday():
    friday_evening = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    monday_open = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    job = trading_job({"exchange": "XNYS", "every": 900})
    assert next_due(job, friday_evening, friday_evening) == monday_open
    closing = trading_job({"exchange": "XNYS", "after_close": 1800})
    wednesday = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)  # after Wednesday's 16:30 ET run
    assert next_due(closing, wednesday, wednesday) == datetime(2026, 11, 27, 18, 30, tzinfo=UTC)  # 13:00 ET + 30 min
    assert next_due(job.model_copy(update={"enabled": False}), wednesday, wednesday) is None


def test_the_schedule_is_due_at_a_slot_and_says_how_long_to_the_next():
    slot = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # the half day's close, its last slot
    job = trading_job({"exchange": "XNYS", "every": 900})
    schedule = job_schedule(job, slot + timedelta(seconds=3))
    assert isinstance(schedule, TradingSchedule)
    due, following = schedule.is_due(slot - timedelta(minutes=15))
    assert due and following == (datetime(2026, 11, 30, 14, 30, tzinfo=UTC) - slot).total_seconds() - 3
    due, wait = schedule.is_due(slot)  # already run at that slot
    assert not due and wait == following
    assert schedule.remaining_estimate(slot) == timedelta(seconds=following)


def test_a_naive_instant_is_read_as_utc_as_celery_reads_it():
    schedule = TradingSchedule(trading_job({"exchange": "XNYS", "every": 900}).trading)
    assert schedule.next_fire(datetime(2026, 11, 27, 17, 50)) == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert schedule.next_fire(datetime(2026, 11, 27, 18, 0, tzinfo=UTC)) == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


def at_utc(*fields) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def test_a_slot_missed_while_beat_was_down_fires_late_only_while_it_is_current():
    every = job_schedule(trading_job({"exchange": "XNYS", "every": 900}), at_utc(2026, 11, 25, 15, 20))
    last_run = at_utc(2026, 11, 25, 15, 0)  # 10:00 ET; beat then missed 10:15 by five minutes: still current
    assert every.is_due(last_run)[0]
    every.nowfun = lambda: at_utc(2026, 11, 26, 1, 0)  # Wednesday night: the afternoon's slots are gone
    due, wait = every.is_due(last_run)
    assert not due and wait == (at_utc(2026, 11, 27, 14, 30) - at_utc(2026, 11, 26, 1, 0)).total_seconds()
    assert every.remaining_estimate(last_run) == timedelta(seconds=wait)

    closing = job_schedule(trading_job({"exchange": "XNYS", "after_close": 1800}), at_utc(2026, 11, 26, 17, 0))
    tuesday_run = at_utc(2026, 11, 24, 21, 30)  # Wednesday's 16:30 ET run was missed
    assert closing.is_due(tuesday_run)[0]  # Thanksgiving: no session opened since, so it still runs
    closing.nowfun = lambda: at_utc(2026, 11, 27, 15, 0)  # Friday has opened: it waits for Friday's
    due, wait = closing.is_due(tuesday_run)
    assert not due and wait == (at_utc(2026, 11, 27, 18, 30) - at_utc(2026, 11, 27, 15, 0)).total_seconds()


def test_a_trading_job_runs_its_venues_instruments_when_its_scope_names_the_venue():
    job = trading_job(scope={"exchange": "XTAI", "timeframe": "1d"})
    assert job.run_scope() == {"exchange": "XTAI", "timeframe": "1d"}
    with pytest.raises(InvalidJob) as caught:  # a stock venue is fed by imports: nothing to fetch on its clock
        parse_job({"name": "tw-sync", "task": "ohlc", "scope": {"exchange": "XTAI"},
                   "trading": {"exchange": "XTAI", "every": 900}})
    assert caught.value.field == "scope.exchange" and "fed by imports" in str(caught.value)
