"""The schedule to hold: defaults, SCHEDULE_OVERRIDES, operators' history, and what Redis must change to hold it."""

import pytest

from services.core.pipeline.job_plan import (
    DEFAULT_JOBS,
    LiveEntry,
    Planned,
    ScheduleError,
    operator_state,
    plan_writes,
    reconcile,
    seed_jobs,
)
from services.core.pipeline.jobs import parse_job


def job(name="btc-hourly", **fields):
    return parse_job({"name": name, "task": "ohlc", "scope": {"symbol": "BTC/USD"}, "cron": "5 * * * *", **fields})


def test_the_seed_is_the_code_table_as_default_jobs_in_the_configured_zone():
    seed = seed_jobs({}, "Europe/Berlin")
    assert set(seed) == set(DEFAULT_JOBS)
    hourly = seed["pipeline-all-hourly"]
    assert hourly.source == "default"
    assert hourly.job.spec() == {"name": "pipeline-all-hourly", "task": "all", "scope": {}, "cron": "5 * * * *",
                                 "timezone": "Europe/Berlin", "enabled": True, "priority": 5}
    assert seed["prune-daily"].job.task == "prune-runs"


def test_an_override_changes_fields_removes_a_job_with_null_and_adds_one_with_a_task():
    seed = seed_jobs({"pipeline-all-hourly": {"every": 600}, "levels-weekly": None,
                      "btc": {"task": "ohlc", "scope": {"symbol": "BTC/USD"}, "cron": "1 * * * *", "priority": 8}},
                     "UTC")
    assert seed["pipeline-all-hourly"].source == "override"
    assert (seed["pipeline-all-hourly"].job.every, seed["pipeline-all-hourly"].job.cron) == (600, None)
    assert "levels-weekly" not in seed
    assert seed["btc"] == Planned(job("btc", cron="1 * * * *", priority=8), "override")
    assert seed["patterns-weekly"].source == "default"


def test_an_override_in_the_shape_before_jobs_still_reads():
    seed = seed_jobs({"probe": {"task": "pipeline.start", "args": ["ohlc", {"symbol": "BTC/USD"}], "every": 30,
                                "kwargs": {}},
                      "repair": {"task": "ingest.repair_failed_windows", "args": [], "cron": "0 4 * * *"}}, "UTC")
    assert seed["probe"].job.spec()["task"] == "ohlc" and seed["probe"].job.scope_dict() == {"symbol": "BTC/USD"}
    assert seed["repair"].job.task == "repair-failed-windows"


@pytest.mark.parametrize(("overrides", "named"), [
    ({"orphan": {"every": 60}}, "'orphan': a new job needs a 'task'"),
    ({"pipeline-all-hourly": {"cron": "5 * *"}}, "'pipeline-all-hourly': cron"),
    ({"pipeline-all-hourly": {"every": 1}}, "'pipeline-all-hourly': every"),
    ({"pipeline-all-hourly": {"options": {"queue": "x"}}}, "'pipeline-all-hourly': options"),
    ({"pipeline-all-hourly": "often"}, "'pipeline-all-hourly': an override must be an object"),
])
def test_a_bad_override_is_refused_naming_the_job_and_field(overrides, named):
    with pytest.raises(ScheduleError, match=named):
        seed_jobs(overrides, "UTC")


def test_operator_state_is_each_jobs_latest_change_and_a_reset_hands_it_back():
    latest = {"btc-hourly": ("change", job().spec()), "prune-daily": ("delete", None),
              "levels-weekly": ("reset", {"name": "levels-weekly"}), "gone": ("add", {"name": "gone", "task": "x"})}
    state, problems = operator_state(latest, "UTC")
    assert state == {"btc-hourly": job(), "prune-daily": None}
    assert len(problems) == 1 and "'gone'" in problems[0]


def test_an_operator_wins_over_an_override_which_wins_over_the_default_and_a_deleted_job_stays_deleted():
    seed = seed_jobs({"pipeline-all-hourly": {"cron": "7 * * * *"}, "patterns-weekly": {"priority": 2}}, "UTC")
    mine = parse_job({**seed["pipeline-all-hourly"].job.spec(), "cron": "9 * * * *"})
    plan = reconcile(seed, {"pipeline-all-hourly": mine, "prune-daily": None, "btc-hourly": job()})
    assert plan["pipeline-all-hourly"] == Planned(mine, "operator")
    assert plan["patterns-weekly"].source == "override" and plan["levels-weekly"].source == "default"
    assert "prune-daily" not in plan
    assert plan["btc-hourly"] == Planned(job(), "operator")


def test_a_new_release_default_appears_and_an_unchanged_default_follows_the_code():
    old = {"pipeline-all-hourly": Planned(job("pipeline-all-hourly", cron="5 * * * *"), "default")}
    new_code = {"pipeline-all-hourly": Planned(job("pipeline-all-hourly", cron="6 * * * *"), "default"),
                "new-daily": Planned(job("new-daily", cron="0 0 * * *"), "default")}
    live = {name: LiveEntry(planned.job, planned.source) for name, planned in old.items()}
    writes, deletes = plan_writes(reconcile(new_code, {}), live)
    assert [(planned.job.name, restart) for planned, restart in writes] == [("new-daily", True),
                                                                           ("pipeline-all-hourly", True)]
    assert deletes == []


def test_what_redis_already_holds_is_left_alone_and_what_it_should_not_hold_is_deleted():
    plan = {"a": Planned(job("a"), "default"), "b": Planned(job("b", priority=9), "operator")}
    live = {"a": LiveEntry(job("a"), "default"), "b": LiveEntry(job("b"), "operator"),
            "stray": LiveEntry(None, None), "old": LiveEntry(job("old"), "default")}
    writes, deletes = plan_writes(plan, live)
    # b's priority changed but not its time: rewritten, its clock (and last run) kept.
    assert writes == [(plan["b"], False)]
    assert deletes == ["old", "stray"]


def test_after_a_flushed_redis_every_planned_job_is_written_with_a_fresh_clock():
    plan = reconcile(seed_jobs({}, "UTC"), {"btc-hourly": job()})
    writes, deletes = plan_writes(plan, {})
    assert {planned.job.name for planned, _ in writes} == {*DEFAULT_JOBS, "btc-hourly"}
    assert all(restart for _, restart in writes) and deletes == []
