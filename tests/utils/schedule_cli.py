"""`candleflow schedule` as a subprocess on a schedule holding the default jobs, as beat's start writes it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import CompletedProcess

import redis
from sqlalchemy import Engine

from services.core.pipeline.job_plan import seed_jobs
from services.core.pipeline.schedules import reconcile_schedule

CLI = str(Path(sys.executable).parent / "candleflow")


@contextmanager
def schedule_cli(engine: Engine, database_url: str, redis_url: str) -> Iterator[Callable[..., CompletedProcess]]:
    """A function running `candleflow schedule ARGS` against these servers, the schedule reset first."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    reconcile_schedule(client, engine, seed_jobs({}, "UTC"), "UTC")
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "TIMEZONE": "UTC"}

    def run(*args: str) -> CompletedProcess:
        return subprocess.run([CLI, "schedule", *args], env=env, capture_output=True, text=True, timeout=60)

    try:
        yield run
    finally:
        client.close()
