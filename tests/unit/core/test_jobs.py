"""Schedule jobs: the JSON shape, every refusal naming its field, and when a job is next due."""

from datetime import UTC, datetime, timedelta

import pytest

from services.core.pipeline.jobs import (
    InvalidJob,
    apply_patch,
    celery_task,
    next_due,
    parse_job,
    schedule_changed,
    send_arguments,
)
from services.core.priority import broker_priority

NOW = datetime(2026, 3, 2, 10, 30, 15, tzinfo=UTC)


def job(**fields):
    return parse_job({"name": "btc-hourly", "task": "ohlc", "scope": {"symbol": "BTC/USD"}, "cron": "5 * * * *",
                      **fields})


def test_a_job_reads_and_writes_the_documented_shape_with_defaults_filled_in():
    assert job().spec() == {"name": "btc-hourly", "task": "ohlc", "scope": {"symbol": "BTC/USD"},
                            "cron": "5 * * * *", "timezone": "UTC", "enabled": True, "priority": 5}
    assert parse_job({"name": "x", "task": "all", "every": 60}, "Europe/Berlin").spec()["timezone"] == "Europe/Berlin"
    assert parse_job(job(priority=8).spec()) == job(priority=8)


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "BTC"}, "name"), ({"name": "a_b"}, "name"), ({"name": "x" * 64}, "name"), ({"name": "lock"}, "name"),
    ({"name": "-x"}, "name"), ({"task": "nope"}, "task"), ({"task": 5}, "task"),
    ({"cron": "5 * *"}, "cron"), ({"cron": "61 * * * *"}, "cron"), ({"cron": "*/0 * * * *"}, "cron"),
    ({"cron": "- * * * *"}, "cron"), ({"cron": 5}, "cron"),
    ({"cron": None}, "cron"), ({"every": 60}, "every"),
    ({"scope": {"symbol": "btc"}}, "scope.symbol"), ({"scope": {"colour": "red"}}, "scope.colour"),
    ({"scope": {"symbol": "BTC/USD", "since": "2024-01-01"}}, "scope.since"), ({"scope": "BTC/USD"}, "scope"),
    ({"timezone": "Mars/Olympus"}, "timezone"), ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"priority": 10}, "priority"), ({"priority": "9"}, "priority"), ({"priority": True}, "priority"),
    ({"enabled": "yes"}, "enabled"), ({"colour": "red"}, "colour"), ({"next_run_at": "x"}, "next_run_at"),
    ({"k" * 5000: 1}, "k" * 40),
])
def test_a_bad_job_is_refused_naming_the_field(fields, field):
    with pytest.raises(InvalidJob) as refused:
        job(**fields)
    assert refused.value.field == field


@pytest.mark.parametrize(("spec", "field"), [
    ({"name": "x", "task": "ohlc", "every": 9}, "every"), ({"name": "x", "task": "ohlc", "every": 0}, "every"),
    ({"name": "x", "task": "ohlc", "every": -5}, "every"), ({"name": "x", "task": "ohlc", "every": 1.5}, "every"),
    ({"name": "x", "task": "ohlc", "every": 10**30}, "every"),
    ({"name": "x", "task": "ohlc"}, "cron"), ({"task": "ohlc", "every": 60}, "name"),
    ({"name": "x", "task": "backfill", "every": 60}, "scope.symbol"),
    ({"name": "x", "task": "prune-runs", "every": 60, "scope": {"symbol": "BTC/USD"}}, "scope"),
])
def test_an_interval_below_the_floor_a_missing_time_and_a_scope_where_none_belongs_are_refused(spec, field):
    with pytest.raises(InvalidJob) as refused:
        parse_job(spec)
    assert refused.value.field == field


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidJob, match="JSON object") as refused:
        parse_job(["btc-hourly"])
    assert refused.value.field == "body"


def test_a_patch_changes_fields_and_cron_and_every_replace_each_other():
    changed = apply_patch(job(), {"every": 600, "priority": 9})
    assert (changed.cron, changed.every, changed.priority) == (None, 600, 9)
    assert changed.scope_dict() == {"symbol": "BTC/USD"}
    assert apply_patch(changed, {"cron": "0 * * * *"}).every is None
    assert apply_patch(job(), {"enabled": False}).enabled is False
    assert apply_patch(job(), {"scope": {}}).scope_dict() == {}


@pytest.mark.parametrize(("patch", "field"), [({"name": "other"}, "name"), ({"task": "all"}, "task"),
                                              ({"cron": "1 * * * *", "every": 60}, "every"),
                                              ({"every": None}, "every"), ({"nope": 1}, "nope"),
                                              ({"scope": {"symbol": "x"}}, "scope.symbol"), ({}, "body"),
                                              ([], "body")])
def test_a_patch_cannot_rename_retask_or_break_a_job(patch, field):
    with pytest.raises(InvalidJob) as refused:
        apply_patch(job(), patch)
    assert refused.value.field == field


def test_a_run_job_starts_a_run_at_its_priority_and_a_maintenance_job_its_task():
    assert celery_task(job()) == "pipeline.start"
    assert send_arguments(job(priority=8)) == (["ohlc", {"symbol": "BTC/USD"}], {"priority": 8},
                                               {"priority": broker_priority(8)})
    prune = parse_job({"name": "p", "task": "prune-ledger", "cron": "0 3 * * *", "priority": 2})
    assert celery_task(prune) == "ingest.prune_ledger"
    assert send_arguments(prune) == ([], {}, {"priority": broker_priority(2)})


def test_a_cron_is_due_at_its_next_time_in_its_own_zone():
    assert next_due(job(), NOW, NOW) == datetime(2026, 3, 2, 11, 5, tzinfo=UTC)
    # 09:00 in Berlin is 08:00 UTC in winter: tomorrow's, as today's has passed.
    berlin = job(cron="0 9 * * *", timezone="Europe/Berlin")
    assert next_due(berlin, NOW, NOW) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


def test_an_interval_counts_from_its_anchor_an_overdue_job_is_due_now_and_a_disabled_one_never():
    every = parse_job({"name": "x", "task": "all", "every": 60})
    assert next_due(every, NOW, NOW) == NOW + timedelta(seconds=60)
    assert next_due(every, NOW - timedelta(hours=1), NOW) == NOW
    assert next_due(job(enabled=False), NOW, NOW) is None


def test_the_clock_restarts_for_a_new_retimed_rezoned_or_reenabled_job_only():
    assert schedule_changed(None, job())
    assert schedule_changed(job(), job(cron="6 * * * *"))
    assert schedule_changed(job(), job(timezone="Europe/Berlin"))
    assert schedule_changed(job(enabled=False), job())
    assert not schedule_changed(job(), job(priority=9))
    assert not schedule_changed(job(), job(enabled=False))


def test_the_api_and_operations_docs_name_every_maintenance_task():
    from pathlib import Path

    from services.core.pipeline.jobs import MAINTENANCE_TASKS

    docs = Path(__file__).resolve().parents[3] / "docs"
    for page in ("api.md", "operations.md"):
        text = (docs / page).read_text(encoding="utf-8")
        missing = [name for name in MAINTENANCE_TASKS if f"`{name}`" not in text]
        assert not missing, f"docs/{page} does not name {missing}"
