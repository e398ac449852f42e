"""Settings: every environment variable the services read, in one object."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StrictInt, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.core.auto_add import AutoAddRule, parse_auto_add
from services.core.brokers import check_broker_url, check_result_backend
from services.core.exceptions import ConfigurationError
from services.core.exchange_ids import ccxt_exchange_ids
from services.core.partitioning import PartitionInterval, parse_interval, parse_retention
from services.core.secrets import url_password, weakness
from services.core.timeframe import Timeframe
from services.core.venues import PAIR_RE

__all__ = ["Settings", "get_settings", "load_settings", "WORKER_POOLS", "DEFAULT_TASK_TIME_LIMITS"]

# Celery pools a worker may run: processes (the default) or threads in one process.
WORKER_POOLS = frozenset({"prefork", "threads"})
# Stage time limits of the run kinds that need other than TASK_TIME_LIMIT_S (TASK_TIME_LIMITS adds to these).
DEFAULT_TASK_TIME_LIMITS = {"backfill": 3600}


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Process configuration, read from the environment (and `.env` when present)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: str = Field("dev", description="dev | test | prod; prod refuses placeholder secrets")
    database_url: str = "postgresql+psycopg2://candleflow:candleflow@localhost:5432/candleflow"
    # candleflow's own state (de-duplication locks, rate limit, RedBeat, message holders) lives here,
    # whatever the broker: BROKER_URL and RESULT_BACKEND default to it.
    redis_url: str = "redis://localhost:6379/0"
    # The master's name in sentinel.conf, for a sentinel:// BROKER_URL or RESULT_BACKEND (declared
    # before them: their check reads it).
    broker_sentinel_master: str = ""
    # The Celery broker: redis://, rediss://, sentinel://h1:26379;sentinel://h2:26379 or amqp:// (RabbitMQ).
    broker_url: str | None = Field(None, validate_default=True)
    # Task results and chord counters: a Redis, directly or by Sentinel.
    result_backend: str | None = Field(None, validate_default=True)
    exchange: str = "kraken"
    exchange_api_url: str | None = None
    exchange_timeout_ms: int = Field(10_000, gt=0)
    exchange_rate_limit_per_s: float = Field(5.0, gt=0)
    exchange_clock_recheck_s: float = Field(60.0, ge=0)
    symbols: Annotated[list[str], NoDecode] = ["BTC/USD", "ETH/USD"]
    timeframes: Annotated[list[str], NoDecode] = ["1h"]
    fetch_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    sync_lookback_bars: int = Field(500, gt=0)
    task_time_limit_s: int = Field(600, gt=0)
    result_expires_s: int = Field(86_400, gt=0)
    timezone: str = "UTC"
    log_level: str = "INFO"
    log_format: str = Field("text", pattern="^(text|json)$")
    api_token: str = "CHANGE_ME"
    # Reads (candles, signals, runs, ...) need a token too: `token` (the production default) or `open`.
    api_read_access: str | None = Field(None, pattern="^(open|token)$")
    # An optional second token that may read but never change anything (dashboards, notebooks).
    api_read_token: str = ""
    # The password of the read-only role Grafana's Market dashboard connects as (services/core/reader_role.py).
    grafana_db_password: str = "CHANGE_ME"
    indicator_params: dict = Field(default_factory=dict, description="JSON overrides, e.g. {\"rsi\": 21}")
    levels_lookback_bars: int = Field(500, gt=10)
    schedule_overrides: dict = Field(default_factory=dict, description="JSON: job name → fields or null")
    beat_lock_timeout_s: int = Field(60, ge=15)
    runs_retention_days: int = Field(30, gt=0)
    # An unfinished run quiet this long (no stage recorded, its start time passed) is checked for
    # messages in the broker each minute; none found, it is failed as lost and its lock freed.
    lost_run_after_s: int = Field(300, ge=60)
    # A delivered message whose worker process is gone (no answer, or a new process under its name)
    # this long is handed back to its queue by the same minute job, instead of after the visibility
    # timeout; long enough that a worker too busy to answer one broadcast is not taken for dead.
    dead_worker_after_s: int = Field(45, ge=10)
    # Markets the daily market sync adds to the universe by itself, e.g. "quote=USDT,type=spot"; empty: none.
    markets_auto_add: str = ""
    # Instruments per stage task: large enough that Celery's per-task cost fades, small enough
    # that a batch's sync stays well inside TASK_TIME_LIMIT_S at the exchange's rate limit.
    pipeline_batch_size: int = Field(50, gt=0, le=1000)
    # Threads fetching a batch in each ingest process; the shared rate limit still spaces
    # every request, so more threads only hide the exchange's latency.
    ingest_fetch_threads: int = Field(8, gt=0, le=64)
    # The API's readiness view is refreshed in the background this often; /api/health serves it.
    api_health_refresh_s: float = Field(5.0, gt=0, le=60)
    # The exporter: where it listens and how hard it may lean on Redis, Postgres and the workers.
    exporter_port: int = Field(9808, gt=0, lt=65536)
    # All interfaces inside its container (bandit B104, reviewed); run-local passes 127.0.0.1.
    exporter_bind: str = "0.0.0.0"  # nosec B104
    # Workers are asked for their queues in the background, never during a scrape:
    # a broadcast always waits out its timeout, which would blow the scrape budget.
    exporter_inspect_interval_s: float = Field(10.0, gt=0)
    exporter_inspect_timeout_s: float = Field(1.0, gt=0)
    # Postgres-backed figures (runs, freshness, rejects, signals) change hourly: they are read
    # in the background this often and served from memory, keeping scrapes cheap. 0 reads
    # them during every scrape instead.
    exporter_db_refresh_s: float = Field(15.0, ge=0)
    # A Postgres query slower than this is cancelled and counted as a scrape error.
    exporter_query_timeout_ms: int = Field(2000, gt=0)
    # In-flight payloads are parsed to attribute them to queues only up to this many;
    # beyond it (a flood of ETA tasks) only the total is reported, to keep scrapes cheap.
    exporter_unacked_parse_limit: int = Field(1000, ge=0)
    # Task ids remembered from task-sent events, for queue-wait times and message ages.
    exporter_tracked_tasks: int = Field(100_000, gt=0)
    # --- Worker tuning (issue #16): applied as the app's worker_* keys, so `celery inspect conf`
    # and Flower show them. 0 is "no limit" for the two recycling thresholds.
    # A task is a batch of instruments (PIPELINE_BATCH_SIZE), so a child runs few of them; the
    # memory ceiling below is the guard against growth, and recycling by count would only make
    # the ingest child reload the exchange's market list for nothing.
    worker_max_tasks_per_child: int = Field(0, ge=0)
    # Almost twice the largest child measured (worker-ingest at 10,000 instruments: 464 MB for
    # its main process and child together, docs/benchmarks.md) and under the 1 GB container limit
    # of docker-compose.prod.yml,
    # so a bloated child is replaced after its task instead of the container being OOM-killed.
    worker_max_memory_per_child_kb: int = Field(600_000, ge=0)
    # One message reserved per process: a long batch never holds back others a free process could run.
    worker_prefetch_multiplier: int = Field(1, gt=0)
    worker_pool: str = "prefork"
    # The largest file POST /api/imports takes (413 beyond): it waits in Postgres for the ingest
    # worker, which reads it whole into memory. Bigger files: candleflow import on the host.
    import_max_bytes: int = Field(64 * 1024 * 1024, gt=0, le=1024 * 1024 * 1024)
    # Run kind → hard time limit (s) of its stage tasks, merged over these defaults; a kind not
    # named takes TASK_TIME_LIMIT_S. A backfill walks months of bars at the exchange's rate limit.
    task_time_limits: dict[str, StrictInt] = Field(default_factory=lambda: dict(DEFAULT_TASK_TIME_LIMITS),
                                                   description="JSON: run kind → seconds, e.g. {\"backfill\": 7200}")
    # --- Postgres connections of each process (docs/scaling.md, "Connection budget"): a process keeps
    # up to DB_POOL_SIZE connections open and opens up to DB_MAX_OVERFLOW more while they are all busy,
    # so N hosts × processes × (DB_POOL_SIZE + DB_MAX_OVERFLOW) must stay under max_connections.
    db_pool_size: int = Field(5, ge=1, le=100)
    db_max_overflow: int = Field(5, ge=0, le=100)
    # --- Candle partitions (issue #13): candles and indicator_values are split by timeframe, then by
    # time in spans of this interval; the job `partitions-hourly` keeps this many spans ready ahead
    # of now and drops a timeframe's spans once they are wholly older than its CANDLE_RETENTION.
    candle_partition_interval: str = "month"
    candle_partitions_ahead: int = Field(3, ge=1, le=120)
    candle_retention: str = ""
    # How many times a started run whose messages were lost (or whose finish found an instrument
    # short of its last stage) is resumed from its records before it is failed "messages lost".
    run_resume_limit: int = Field(3, ge=0, le=100)

    @field_validator("worker_pool")
    @classmethod
    def _pool_supported(cls, value: str, info: ValidationInfo) -> str:
        if value not in WORKER_POOLS:
            raise ValueError(f"{value[:20]!r} is not a pool candleflow runs: use one of {sorted(WORKER_POOLS)} "
                             "(gevent and eventlet are not installed: psycopg2 would block their event loop, "
                             "and the indicator stages are CPU-bound; see docs/configuration.md)")
        # The threads pool runs tasks in the worker's own process, which Celery never recycles:
        # a child limit there would be accepted and ignored.
        if value != "prefork" and (info.data.get("worker_max_tasks_per_child")
                                   or info.data.get("worker_max_memory_per_child_kb")):
            raise ValueError(f"{value} has no child processes to recycle: set WORKER_MAX_TASKS_PER_CHILD=0 "
                             "and WORKER_MAX_MEMORY_PER_CHILD_KB=0 with it")
        return value

    @field_validator("task_time_limits", mode="before")
    @classmethod
    def _over_default_limits(cls, value: object) -> object:
        return {**DEFAULT_TASK_TIME_LIMITS, **value} if isinstance(value, dict) else value

    @field_validator("task_time_limits")
    @classmethod
    def _limits_positive(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {kind: seconds for kind, seconds in value.items() if seconds < 1}
        if bad:
            raise ValueError(f"time limits must be at least 1 second, got {bad}")
        return value

    @field_validator("symbols", "timeframes", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("symbols")
    @classmethod
    def _symbols_well_formed(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol is required, e.g. BTC/USD,ETH/USD")
        bad = [s for s in value if not PAIR_RE.fullmatch(s)]
        if bad:
            raise ValueError(f"malformed symbol(s) {bad}: expected BASE/QUOTE, e.g. BTC/USD")
        return value

    @field_validator("timeframes")
    @classmethod
    def _timeframes_well_formed(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one timeframe is required, e.g. 1h")
        for timeframe in value:
            Timeframe.parse(timeframe)
        return value

    @field_validator("markets_auto_add")
    @classmethod
    def _auto_add_rule(cls, value: str) -> str:
        parse_auto_add(value)  # its ValueError names what is wrong
        return value

    @field_validator("candle_partition_interval")
    @classmethod
    def _partition_interval(cls, value: str) -> str:
        return parse_interval(value).unit  # its ValueError lists the intervals

    @field_validator("candle_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        parse_retention(value)  # its ValueError names the clause
        return value

    @property
    def partition_interval(self) -> PartitionInterval:
        """CANDLE_PARTITION_INTERVAL as a value."""
        return parse_interval(self.candle_partition_interval)

    @property
    def retention_by_timeframe(self) -> dict:
        """CANDLE_RETENTION as timeframe → timedelta; a timeframe not named is kept forever."""
        return parse_retention(self.candle_retention)

    @property
    def auto_add_rule(self) -> AutoAddRule | None:
        """MARKETS_AUTO_ADD as a rule, or None."""
        return parse_auto_add(self.markets_auto_add)

    @field_validator("timezone")
    @classmethod
    def _timezone_known(cls, value: str) -> str:
        # Checked here, not at the first cron tick: beat and the API refuse to start on a typo.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value[:40]!r}: use an IANA name, e.g. UTC or Europe/Berlin") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_is_postgres(cls, value: str) -> str:
        # The driver is named here: SQLAlchemy 2.1 maps a bare postgresql:// (what hosting
        # services hand out) to psycopg 3, which is not installed; psycopg2 is the one we ship.
        scheme, separator, rest = value.partition("://")
        dialect, _, driver = scheme.lower().partition("+")
        if not separator or dialect not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        if driver not in ("", "psycopg2"):
            raise ValueError(f"driver {driver!r} is not installed: use postgresql:// or postgresql+psycopg2:// "
                             "(candleflow connects with psycopg2)")
        return f"postgresql+psycopg2://{rest}"

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("broker_sentinel_master")
    @classmethod
    def _master_name(cls, value: str) -> str:
        return value.strip()

    @field_validator("broker_url", "result_backend")
    @classmethod
    def _celery_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Unset: REDIS_URL, as before these settings existed (None if REDIS_URL itself was refused).
        url = value or info.data.get("redis_url")
        if url is None:
            return None
        check = check_broker_url if info.field_name == "broker_url" else check_result_backend
        return check(url, info.data.get("broker_sentinel_master", ""))

    @field_validator("exchange")
    @classmethod
    def _exchange_known(cls, value: str) -> str:
        if value not in ccxt_exchange_ids():
            raise ValueError(f"unknown ccxt exchange id {value!r}")
        return value

    @field_validator("exchange_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// base URL")
        return value.rstrip("/")

    @property
    def reads_need_token(self) -> bool:
        """API_READ_ACCESS, or by environment when unset: closed in production, open in development."""
        if self.api_read_access is not None:
            return self.api_read_access == "token"
        return self.environment not in ("dev", "test")

    def require_real_secrets(self) -> None:
        """Outside dev/test, refuse any weak secret this process holds, naming its variable."""
        if self.environment in ("dev", "test"):
            return
        problems = [f"{name} {reason}" for name, value in (
            ("API_TOKEN", self.api_token),
            *([("API_READ_TOKEN", self.api_read_token)] if self.api_read_token else []),
            ("the password in DATABASE_URL (POSTGRES_PASSWORD)", url_password(self.database_url)),
            ("the password in REDIS_URL (REDIS_PASSWORD)", url_password(self.redis_url)),
            *[(f"the password in {name}", url_password(url)) for name, url in
              (("BROKER_URL", self.broker_url), ("RESULT_BACKEND", self.result_backend))
              if url != self.redis_url],
        ) if (reason := weakness(value)) is not None]
        if problems:
            raise ConfigurationError("weak secrets for production: " + "; ".join(problems)
                                     + " (use e.g. `openssl rand -hex 32`; see docs/security.md)")


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation failures into one clear message per variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            variable = str(error["loc"][0]).upper() if error["loc"] else "?"
            lines.append(f"{variable}: {error['msg']}")
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
