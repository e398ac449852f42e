"""The exporter's own settings, read from EXPORTER_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ExporterSettings"]


class ExporterSettings(BaseSettings):
    """Where the exporter listens and how hard it may lean on Redis, Postgres and the workers."""

    model_config = SettingsConfigDict(env_prefix="EXPORTER_", env_file=".env", extra="ignore")

    port: int = Field(9808, gt=0, lt=65536)
    bind: str = "0.0.0.0"
    # Workers are asked for their queues in the background, never during a scrape:
    # a broadcast always waits out its timeout, which would blow the scrape budget.
    inspect_interval_s: float = Field(10.0, gt=0)
    inspect_timeout_s: float = Field(1.0, gt=0)
    # Postgres-backed figures (runs, freshness, rejects, signals) change hourly: they are read
    # in the background this often and served from memory, keeping scrapes cheap. 0 reads
    # them during every scrape instead.
    db_refresh_s: float = Field(15.0, ge=0)
    # A Postgres query slower than this is cancelled and counted as a scrape error.
    query_timeout_ms: int = Field(2000, gt=0)
    # In-flight payloads are parsed to attribute them to queues only up to this many;
    # beyond it (a flood of ETA tasks) only the total is reported, to keep scrapes cheap.
    unacked_parse_limit: int = Field(1000, ge=0)
    # Task ids remembered from task-sent events, for queue-wait times and message ages.
    tracked_tasks: int = Field(100_000, gt=0)
    # Must match services/scheduler/beat.py's redbeat_key_prefix.
    redbeat_key_prefix: str = "candleflow:redbeat"
