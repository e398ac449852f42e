"""The exporter assembled: one registry of collectors, the background threads that feed them, the HTTP server."""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from celery import Celery
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine

from services.core import keys
from services.core.brokers import broker_redis
from services.core.config import Settings, get_settings
from services.exporter.beat import BeatCollector
from services.exporter.event_stream import EventStream
from services.exporter.events import TaskEventCollector, TaskEventStats
from services.exporter.exposition import EMPTY, EOF, Chunk, metrics_app, render_families, serve_metrics
from services.exporter.health import ScrapeHealth, ScrapeHealthCollector
from services.exporter.pipeline import PipelineCollector, PipelineRefresher
from services.exporter.pool_memory import PoolMemory, PoolMemoryCollector, memory_from_replies
from services.exporter.queues import QueueCollector, broker_probe
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
                 settings: Settings | None = None, broker_client: redis.Redis | None = None) -> None:
        # `broker_client`: the broker's Redis when it is not REDIS_URL's (Sentinel); unused on RabbitMQ.
        self.settings = settings or get_settings()
        queues = [queue.name for queue in app.amqp.queues.values()]
        transport = app.conf.broker_transport_options or {}
        self.health = ScrapeHealth()
        self.tasks = TaskEventStats(queue_router(app), tracked_tasks=self.settings.exporter_tracked_tasks)
        self.workers = WorkerDirectory(queues)
        self.stream = EventStream(app, [self.tasks.record, self._worker_event])
        self.pool_memory = PoolMemory()
        self.poller = InspectPoller(app, self.workers, self.health, interval=self.settings.exporter_inspect_interval_s,
                                    timeout=self.settings.exporter_inspect_timeout_s,
                                    record_memory=lambda replies: self.pool_memory.record(memory_from_replies(replies)))
        probe_options = {"priority_steps": transport["priority_steps"]} if "priority_steps" in transport else {}
        probe = broker_probe(app, broker_client or redis_client, key_prefix=transport.get("global_keyprefix", ""),
                             routing={name: name for name in queues},
                             unacked_parse_limit=self.settings.exporter_unacked_parse_limit,
                             sent_time_of=self.tasks.sent_time_of, **probe_options)
        self.pipeline = PipelineCollector(engine, self.health, query_timeout_ms=self.settings.exporter_query_timeout_ms,
                                          refresh_interval_s=self.settings.exporter_db_refresh_s)
        self.refresher = PipelineRefresher(self.pipeline) if self.settings.exporter_db_refresh_s else None
        # `registry` holds every collector; `_live` all but the pipeline's, whose families a
        # scrape takes ready-rendered from the last background read (render_parts()).
        self.registry, self._live = CollectorRegistry(), CollectorRegistry()
        for collector in (
            QueueCollector(probe, self.health),
            WorkerCollector(self.workers),
            PoolMemoryCollector(self.workers, self.pool_memory),
            TaskEventCollector(self.tasks, self.stream),
            BeatCollector(redis_client, keys.REDBEAT_PREFIX, self.health),
            self.pipeline,
            ProcessCollector(registry=None),
            ScrapeHealthCollector(self.health),  # last: it reports the errors of the scrape it ends
        ):
            self.registry.register(collector)
            if collector is not self.pipeline:
                self._live.register(collector)
        self._server = None

    @classmethod
    def from_environment(cls) -> Exporter:
        """Built from the same settings as every other service (REDIS_URL, DATABASE_URL, EXPORTER_*)."""
        from services.core.celery_app import app  # deferred: it reads REDIS_URL when imported
        from services.core.db import engine_for

        settings = get_settings()
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        broker = None if settings.broker_url == settings.redis_url else broker_redis(
            settings.broker_url, settings.broker_sentinel_master)
        # The statement timeout is not the engine's: PipelineCollector sets it on each of its
        # transactions, so it holds for whatever engine a test or benchmark hands in too.
        return cls(app, client, engine_for(settings.database_url), settings, broker_client=broker)

    def render(self, accept: str | None = None, names: list[str] | None = None) -> tuple[bytes, str]:
        """A scrape's body and content type for an Accept header (and `name[]` filter), as /metrics serves it."""
        head, tail, content_type = self.render_parts(accept, names)
        return head.data + tail, content_type

    def render_parts(self, accept: str | None = None, names: list[str] | None = None) -> tuple[Chunk, bytes, str]:
        """The body as the Chunk it opens with, the rest, and the content type.

        The bytes are prometheus_client's own exposition of the registry (render_families
        writes the sample lines faster, docs/benchmarks.md). In background mode the pipeline's
        families come first, as rendered and deflated after the last refresh; a `name[]`
        filter, or reading Postgres on every scrape, renders the registry as it stands.
        """
        encoder, content_type = choose_encoder(accept or "")
        closing = EOF if content_type.startswith("application/openmetrics-text") else b""
        if names or not self.pipeline.refresh_interval_s:
            source = self.registry.restricted_registry(names) if names else self.registry
            return EMPTY, render_families(encoder, source.collect(), content_type) + closing, content_type
        return (self.pipeline.exposition(content_type, encoder),
                render_families(encoder, self._live.collect(), content_type) + closing, content_type)

    def _worker_event(self, event) -> None:
        if str(event.get("type", "")).startswith("worker-"):
            self.workers.record_event(event)

    def _threads(self) -> list:
        return [thread for thread in (self.stream, self.poller, self.refresher) if thread is not None]

    def start(self, serve: bool = True) -> None:
        for thread in self._threads():
            thread.start()
        if serve:
            bind, port = self.settings.exporter_bind, self.settings.exporter_port
            self._server, _thread = serve_metrics(metrics_app(self.render_parts), bind, port)
            log.info("exporter serving metrics on %s:%d", bind, port)

    def stop(self) -> None:
        for thread in self._threads():
            thread.stop()
        for thread in self._threads():
            if thread.is_alive():
                thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
