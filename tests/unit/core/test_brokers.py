"""Broker and result backend URLs: what each scheme needs, what is refused at start and why."""

from __future__ import annotations

import pytest

from services.core.brokers import (
    backend_transport_options,
    broker_of,
    broker_transport_options,
    check_result_backend,
    queue_arguments,
    sentinel_hosts,
)
from services.core.celery_app import task_queues
from services.core.config import load_settings
from services.core.exceptions import ConfigurationError

SENTINELS = "sentinel://10.0.0.1:26379/0;sentinel://10.0.0.2:26380/0"


def test_unset_broker_and_backend_are_redis_url_as_before():
    settings = load_settings(redis_url="redis://cache:6379/2")
    assert settings.broker_url == settings.result_backend == "redis://cache:6379/2"


def test_an_empty_broker_url_is_unset():
    assert load_settings(redis_url="redis://cache:6379/2", broker_url="").broker_url == "redis://cache:6379/2"


@pytest.mark.parametrize("url, kind", [("redis://r:6379/0", "redis"), ("rediss://r:6380/0", "redis"),
                                       (SENTINELS, "sentinel"), ("amqp://u:p@rabbit:5672//", "amqp")])
def test_each_supported_scheme_is_accepted(url, kind):
    settings = load_settings(broker_url=url, broker_sentinel_master="mymaster")
    assert settings.broker_url == url and broker_of(url).kind == kind


@pytest.mark.parametrize("url", ["sqs://", "kafka://k:9092", "memory://", "localhost:5672"])
def test_another_broker_scheme_is_refused_naming_the_variable_and_the_choices(url):
    with pytest.raises(ConfigurationError) as error:
        load_settings(broker_url=url)
    assert "BROKER_URL: " in str(error.value) and "amqp://" in str(error.value) and "sentinel://" in str(error.value)


def test_amqp_is_refused_as_result_backend_saying_why():
    with pytest.raises(ConfigurationError) as error:
        load_settings(result_backend="amqp://rabbit//")
    assert "RESULT_BACKEND: " in str(error.value) and "chords" in str(error.value)


def test_a_sentinel_url_without_a_master_name_is_refused():
    with pytest.raises(ConfigurationError) as error:
        load_settings(broker_url=SENTINELS)
    assert "BROKER_SENTINEL_MASTER" in str(error.value)


def test_a_sentinel_list_is_split_as_kombu_splits_it():
    assert sentinel_hosts(SENTINELS) == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    with pytest.raises(ValueError, match="not sentinel://host:port"):
        sentinel_hosts("sentinel://a:1;redis://b:2")


def test_the_master_name_goes_into_both_transport_options():
    broker = broker_transport_options(SENTINELS, sentinel_master="mymaster", visibility_timeout_s=60,
                                      priority_steps=[0, 1])
    backend = backend_transport_options(SENTINELS, sentinel_master="mymaster", retry_policy={"max_retries": 1})
    assert broker["master_name"] == backend["master_name"] == "mymaster"
    assert broker["visibility_timeout"] == 60 and backend["retry_policy"] == {"max_retries": 1}


def test_rabbitmq_takes_no_redis_transport_options_and_declares_priority_queues():
    assert broker_transport_options("amqp://r//", sentinel_master="", visibility_timeout_s=60,
                                    priority_steps=[0]) == {}
    assert {q.name: q.queue_arguments for q in task_queues("amqp://r//")} == {
        name: {"x-max-priority": 9} for name in ("ingest", "indicators", "signals", "pipeline")}
    assert all(q.queue_arguments is None for q in task_queues("redis://r:6379/0"))
    assert queue_arguments(SENTINELS) == {}


def test_results_need_a_redis():
    assert check_result_backend("rediss://r:6380/1") == "rediss://r:6380/1"
    with pytest.raises(ValueError, match="results need a Redis"):
        check_result_backend("rpc://")


def test_priorities_follow_the_brokers_order(monkeypatch):
    from services.core import config
    from services.core.priority import broker_priority

    monkeypatch.setenv("BROKER_URL", "amqp://rabbit//")
    config.get_settings.cache_clear()
    try:
        assert [broker_priority(p) for p in (0, 5, 9)] == [0, 5, 9]  # RabbitMQ delivers the highest first
    finally:
        monkeypatch.delenv("BROKER_URL")
        config.get_settings.cache_clear()
    assert [broker_priority(p) for p in (0, 5, 9)] == [9, 4, 0]  # kombu's Redis lists pop the lowest first


def test_a_production_broker_password_is_checked_when_it_is_not_redis_urls():
    strong = "d3b07384d113edec49eaa6238ad5ff00"
    settings = load_settings(environment="prod", api_token=strong, grafana_db_password=strong,
                             database_url=f"postgresql://u:{strong}@db/c", redis_url=f"redis://:{strong}@r:6379/0",
                             broker_url="amqp://guest:guest@rabbit//")
    with pytest.raises(ConfigurationError, match="the password in BROKER_URL is a placeholder"):
        settings.require_real_secrets()
