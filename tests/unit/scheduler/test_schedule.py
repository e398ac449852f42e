"""The periodic-job table and its configuration overrides."""

from datetime import timedelta

import pytest

from services.scheduler.schedule import DEFAULT_JOBS, ScheduleError, build_schedule


def test_the_default_table_runs_the_pipeline_hourly_a_few_minutes_past_the_hour():
    schedule = build_schedule()
    hourly = schedule["pipeline-all-hourly"]
    assert (hourly["task"], hourly["args"]) == ("pipeline.start", ("all", {}))
    assert hourly["schedule"].minute == {5} and len(hourly["schedule"].hour) == 24
    assert set(schedule) == set(DEFAULT_JOBS)
    assert schedule["repair-failed-windows-daily"]["task"] == "ingest.repair_failed_windows"
    assert schedule["prune-daily"]["task"] == "pipeline.prune"
    assert schedule["levels-weekly"]["schedule"].day_of_week == {1}


def test_an_override_replaces_fields_null_disables_and_a_new_job_needs_a_task():
    schedule = build_schedule({"pipeline-all-hourly": {"cron": "7 * * * *"}, "levels-weekly": None,
                               "probe": {"task": "pipeline.ping", "every": 30}})
    assert schedule["pipeline-all-hourly"]["schedule"].minute == {7}
    assert schedule["pipeline-all-hourly"]["args"] == ("all", {})
    assert "levels-weekly" not in schedule
    assert schedule["probe"]["schedule"] == timedelta(seconds=30)
    with pytest.raises(ScheduleError, match="'orphan': a new job needs a 'task'"):
        build_schedule({"orphan": {"every": 5}})


@pytest.mark.parametrize("override", [{"cron": "5 * *"}, {"cron": "99 * * * *"}, {"every": -1}])
def test_a_bad_override_is_refused_naming_the_job(override):
    with pytest.raises(ScheduleError, match="pipeline-all-hourly"):
        build_schedule({"pipeline-all-hourly": override})
