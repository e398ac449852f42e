"""What the routes depend on: settings, Celery, Redis and the engine, injected by create_app."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery
from flask import current_app
from sqlalchemy import Engine

from services.core.config import Settings

__all__ = ["ApiDeps", "EXTENSION_KEY", "deps"]

EXTENSION_KEY = "candleflow"


@dataclass(frozen=True)
class ApiDeps:
    """The collaborators of one app instance; tests inject their own through create_app."""

    settings: Settings
    celery: Celery
    redis: redis.Redis
    engine: Engine


def deps() -> ApiDeps:
    """The dependencies of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
