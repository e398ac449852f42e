"""The exporter assembled: one registry of collectors, the background threads that feed them, the HTTP server."""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from celery import Celery
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from sqlalchemy import Engine, create_engine

from services.exporter.beat import BeatCollector
from services.exporter.event_stream import EventStream
from services.exporter.events import TaskEventCollector, TaskEventStats
from services.exporter.health import ScrapeHealth, ScrapeHealthCollector
from services.exporter.pipeline import PipelineCollector, PipelineRefresher
from services.exporter.queues import QueueCollector, QueueProbe
from services.exporter.settings import ExporterSettings
from services.exporter.workers import InspectPoller, WorkerCollector, WorkerDirectory

__all__ = ["Exporter", "queue_router"]

log = logging.getLogger(__name__)


def queue_router(app: Celery):
    """Task name → queue by the app's own routing table (task-received events do not say)."""
    @lru_cache(maxsize=1024)
    def queue_of(task_name: str) -> str:
        return app.amqp.router.route({}, task_name)["queue"].name
    return queue_of


class Exporter:
    """Everything `python -m services.exporter` runs; tests build one against their own servers."""

    def __init__(self, app: Celery, redis_client: redis.Redis, engine: Engine,
                 settings: ExporterSettings | None = None) -> None:
        self.settings = settings or ExporterSettings()
        queues = [queue.name for queue in app.amqp.queues.values()]
        transport = app.conf.broker_transport_options or {}
        self.health = ScrapeHealth()
        self.tasks = TaskEventStats(queue_router(app), tracked_tasks=self.settings.tracked_tasks)
        self.workers = WorkerDirectory(queues)
        self.stream = EventStream(app, [self.tasks.record, self._worker_event])
        self.poller = InspectPoller(app, self.workers, self.health, interval=self.settings.inspect_interval_s,
                                    timeout=self.settings.inspect_timeout_s)
        probe_options = {"priority_steps": transport["priority_steps"]} if "priority_steps" in transport else {}
        probe = QueueProbe(redis_client, queues, key_prefix=transport.get("global_keyprefix", ""),
                           routing={name: name for name in queues},
                           unacked_parse_limit=self.settings.unacked_parse_limit,
                           sent_time_of=self.tasks.sent_time_of, **probe_options)
        self.pipeline = PipelineCollector(engine, self.health, query_timeout_ms=self.settings.query_timeout_ms,
                                          refresh_interval_s=self.settings.db_refresh_s)
        self.refresher = PipelineRefresher(self.pipeline) if self.settings.db_refresh_s else None
        self.registry = CollectorRegistry()
        for collector in (
            QueueCollector(probe, self.health),
            WorkerCollector(self.workers),
            TaskEventCollector(self.tasks, self.stream),
            BeatCollector(redis_client, self.settings.redbeat_key_prefix, self.health),
            self.pipeline,
            ProcessCollector(registry=None),
            ScrapeHealthCollector(self.health),  # last: it reports the errors of the scrape it ends
        ):
            self.registry.register(collector)
        self._server = None

    @classmethod
    def from_environment(cls) -> Exporter:
        """Built from the same settings as every other service (REDIS_URL, DATABASE_URL, EXPORTER_*)."""
        from services.core.celery_app import app
        from services.core.config import get_settings

        core = get_settings()
        client = redis.Redis.from_url(core.redis_url, socket_timeout=5, socket_connect_timeout=5)
        engine = create_engine(core.database_url, pool_pre_ping=True, pool_size=2, max_overflow=2)
        return cls(app, client, engine)

    def _worker_event(self, event) -> None:
        if str(event.get("type", "")).startswith("worker-"):
            self.workers.record_event(event)

    def _threads(self) -> list:
        return [thread for thread in (self.stream, self.poller, self.refresher) if thread is not None]

    def start(self, serve: bool = True) -> None:
        for thread in self._threads():
            thread.start()
        if serve:
            self._server, _thread = start_http_server(self.settings.port, self.settings.bind, self.registry)
            log.info("exporter serving metrics on %s:%d", self.settings.bind, self.settings.port)

    def stop(self) -> None:
        for thread in self._threads():
            thread.stop()
        for thread in self._threads():
            if thread.is_alive():
                thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
