"""create_app(): the Flask application with its routes, error handling and metrics."""

from __future__ import annotations

import redis
from celery import Celery
from flask import Flask
from sqlalchemy import Engine

from services.api.auth import guard_reads
from services.api.edge import install_security_headers
from services.api.errors import register_error_handlers
from services.api.metrics import install_metrics
from services.api.openapi import openapi_routes
from services.api.routes.analysis import analysis_routes
from services.api.routes.deps import EXTENSION_KEY, ApiDeps
from services.api.routes.health import health_routes
from services.api.routes.imports import import_routes
from services.api.routes.instruments import instrument_routes
from services.api.routes.read import read_routes
from services.api.routes.runs import run_routes
from services.api.routes.schedules import schedule_routes
from services.api.routes.trigger import trigger_routes
from services.core.config import Settings, get_settings

__all__ = ["create_app"]

# Only schedule jobs travel as bodies (everything else in the query string), so refuse big ones early.
_MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None, celery: Celery | None = None,
               redis_client: redis.Redis | None = None, engine: Engine | None = None) -> Flask:
    """Build the API; every collaborator defaults to the configured one and may be injected (tests)."""
    settings = settings or get_settings()
    settings.require_real_secrets()  # before anything else: prod must not start on the placeholder token
    if celery is None:
        from services.core.celery_app import app as celery  # deferred: building it reads the settings
    if redis_client is None:
        # Timeouts keep a hung Redis from hanging requests and the health check.
        redis_client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    if engine is None:
        from services.core.db import engine_for

        engine = engine_for(settings.database_url)

    app = Flask(__name__, static_folder=None)  # no static files: every route is in the OpenAPI document
    app.config["MAX_CONTENT_LENGTH"] = _MAX_BODY_BYTES
    app.json.sort_keys = False  # keep documented field order ("status" first) in responses
    app.extensions[EXTENSION_KEY] = ApiDeps(settings, celery, redis_client, engine)
    register_error_handlers(app)
    install_metrics(app)
    install_security_headers(app)
    guard_reads(app)
    for blueprint in (trigger_routes, read_routes, analysis_routes, instrument_routes, run_routes, health_routes,
                      openapi_routes, schedule_routes, import_routes):
        app.register_blueprint(blueprint)
    return app
