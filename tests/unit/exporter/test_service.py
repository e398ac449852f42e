"""The exporter takes its configuration from core's one Settings class, under the EXPORTER_* names."""

from __future__ import annotations

import pytest
from celery import Celery
from kombu import Queue

from services.core.celery_app import QUEUES, TASK_ROUTES
from services.core.config import load_settings
from services.core.exceptions import ConfigurationError
from services.exporter.service import Exporter
from tests.unit.exporter.fakes import FakeEngine, FakeRedis


def sender_app() -> Celery:
    """Routed like services.core.celery_app; building an Exporter on it connects to nothing."""
    app = Celery("candleflow-test", broker="redis://127.0.0.1:1/0")
    app.conf.update(task_queues=[Queue(name) for name in QUEUES], task_default_queue="ingest", task_routes=TASK_ROUTES)
    return app


def test_exporter_variables_keep_their_names(monkeypatch):
    monkeypatch.setenv("EXPORTER_PORT", "9999")
    monkeypatch.setenv("EXPORTER_BIND", "127.0.0.1")
    monkeypatch.setenv("EXPORTER_DB_REFRESH_S", "0")
    monkeypatch.setenv("EXPORTER_TRACKED_TASKS", "7")
    settings = load_settings()
    assert (settings.exporter_port, settings.exporter_bind) == (9999, "127.0.0.1")
    assert (settings.exporter_db_refresh_s, settings.exporter_tracked_tasks) == (0, 7)


@pytest.mark.parametrize(("variable", "value"), [("EXPORTER_PORT", "70000"), ("EXPORTER_INSPECT_TIMEOUT_S", "0"),
                                                 ("EXPORTER_DB_REFRESH_S", "-1")])
def test_a_malformed_exporter_variable_is_named_in_the_error(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_the_default_exporter_reads_postgres_in_the_background():
    exporter = Exporter(sender_app(), FakeRedis(), FakeEngine({}), load_settings())
    assert exporter.refresher is not None
    assert exporter.pipeline.refresh_interval_s == 15.0


def test_db_refresh_0_leaves_the_postgres_reads_to_each_scrape():
    exporter = Exporter(sender_app(), FakeRedis(), FakeEngine({}), load_settings(exporter_db_refresh_s=0))
    assert exporter.refresher is None
    assert exporter.pipeline.refresh_interval_s == 0


# The beat's own RedBeat configuration draws this warning; the key names are what is tested here.
@pytest.mark.filterwarnings("ignore:RedBeat will stop falling back:DeprecationWarning")
def test_the_exporter_reads_the_schedule_where_the_beat_writes_it():
    from redbeat.schedulers import RedBeatConfig

    from services.scheduler.beat import app as beat_app

    redbeat = RedBeatConfig(beat_app)  # the key names RedBeat derives from the beat's configuration
    client = FakeRedis()
    client.zadd(redbeat.schedule_key, {f"{redbeat.key_prefix}pipeline-all-hourly": 1_700_000_000.0})
    exporter = Exporter(sender_app(), client, FakeEngine({}), load_settings())
    next_run = exporter.registry.get_sample_value("candleflow_beat_next_run_timestamp_seconds",
                                                  {"entry": "pipeline-all-hourly"})
    assert next_run == 1_700_000_000.0
