"""WORKER_* and TASK_TIME_LIMITS: defaults, refusals that name the variable, and how they reach Celery."""

import pytest

from services.core.celery_app import soft_time_limit, worker_conf
from services.core.config import load_settings
from services.core.exceptions import ConfigurationError
from services.core.pipeline.stages import KINDS
from services.core.pipeline.time_limits import kind_time_limits, stage_time_limits


def test_the_defaults_keep_prefetch_one_and_recycle_a_child_only_by_memory():
    assert worker_conf(load_settings()) == {"worker_pool": "prefork", "worker_prefetch_multiplier": 1,
                                            "worker_max_tasks_per_child": None,
                                            "worker_max_memory_per_child": 600_000}


def test_worker_settings_become_celerys_keys(monkeypatch):
    for name, value in {"WORKER_MAX_TASKS_PER_CHILD": "250", "WORKER_MAX_MEMORY_PER_CHILD_KB": "0",
                        "WORKER_PREFETCH_MULTIPLIER": "4"}.items():
        monkeypatch.setenv(name, value)
    assert worker_conf(load_settings()) == {"worker_pool": "prefork", "worker_prefetch_multiplier": 4,
                                            "worker_max_tasks_per_child": 250, "worker_max_memory_per_child": None}


def test_the_threads_pool_is_taken_once_the_child_limits_are_off(monkeypatch):
    monkeypatch.setenv("WORKER_POOL", "threads")
    monkeypatch.setenv("WORKER_MAX_MEMORY_PER_CHILD_KB", "0")
    assert worker_conf(load_settings())["worker_pool"] == "threads"


def test_the_threads_pool_with_a_child_limit_is_refused_not_ignored(monkeypatch):
    monkeypatch.setenv("WORKER_POOL", "threads")
    with pytest.raises(ConfigurationError, match=r"WORKER_POOL: .*WORKER_MAX_MEMORY_PER_CHILD_KB=0"):
        load_settings()


@pytest.mark.parametrize("pool", ["gevent", "eventlet", "solo-ish", ""])
def test_a_pool_candleflow_does_not_run_is_refused_with_the_ones_it_does(monkeypatch, pool):
    monkeypatch.setenv("WORKER_POOL", pool)
    with pytest.raises(ConfigurationError, match=r"WORKER_POOL: .*\['prefork', 'threads'\]"):
        load_settings()


@pytest.mark.parametrize(("variable", "value"), [
    ("WORKER_MAX_TASKS_PER_CHILD", "-1"), ("WORKER_MAX_MEMORY_PER_CHILD_KB", "lots"),
    ("WORKER_PREFETCH_MULTIPLIER", "0"), ("TASK_TIME_LIMITS", '{"backfill": 0}'),
    ("TASK_TIME_LIMITS", '{"backfill": "long"}'), ("TASK_TIME_LIMITS", '{"backfill": true}'),
    ("TASK_TIME_LIMITS", "[3600]")])
def test_a_malformed_worker_setting_is_named(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_backfill_outlasts_the_other_kinds_by_default():
    limits = kind_time_limits(load_settings())
    assert set(limits) == set(KINDS)
    assert limits["backfill"] == 3600
    assert {kind: seconds for kind, seconds in limits.items() if kind != "backfill"} == dict.fromkeys(
        set(KINDS) - {"backfill"}, 600)


def test_task_time_limits_are_merged_over_the_defaults_and_the_rest_follow_task_time_limit_s(monkeypatch):
    monkeypatch.setenv("TASK_TIME_LIMITS", '{"ohlc": 900}')
    monkeypatch.setenv("TASK_TIME_LIMIT_S", "300")
    limits = kind_time_limits(load_settings())
    assert (limits["ohlc"], limits["backfill"], limits["all"], limits["signals"]) == (900, 3600, 300, 300)


def test_an_unknown_run_kind_in_task_time_limits_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TASK_TIME_LIMITS", '{"backfil": 7200}')
    with pytest.raises(ConfigurationError, match=r"TASK_TIME_LIMITS: unknown run kind\(s\) \['backfil'\]"):
        kind_time_limits(load_settings())


def test_a_stage_task_gets_its_kinds_hard_limit_and_a_soft_one_before_it(monkeypatch):
    monkeypatch.setenv("TASK_TIME_LIMITS", '{"levels": 5}')
    settings = load_settings()
    assert stage_time_limits("backfill", settings) == {"time_limit": 3600, "soft_time_limit": 3570}
    assert stage_time_limits("levels", settings) == {"time_limit": 5, "soft_time_limit": 1}
    assert soft_time_limit(1) == 1
