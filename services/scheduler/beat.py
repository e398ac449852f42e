"""The beat process's app: the core Celery app with candleflow's RedBeat scheduler and lock attached.

Run as `celery -A services.scheduler.beat beat` (the scheduler is configured here, so
no `-S` flag is needed).
"""

from __future__ import annotations

from services.core import keys
from services.core.celery_app import app
from services.core.config import get_settings
from services.core.pipeline.job_plan import seed_jobs

__all__ = ["app", "MAX_LOOP_INTERVAL_S"]

# A schedule change reaches the running beat within one loop: Redis is read at every tick.
MAX_LOOP_INTERVAL_S = 5

_settings = get_settings()
seed_jobs(_settings.schedule_overrides, _settings.timezone)  # a bad SCHEDULE_OVERRIDES stops beat here, named
app.conf.update(
    # Jobs live in Redis (RedBeat) and are reconciled at start by the scheduler; none is static.
    beat_schedule={},
    beat_scheduler="services.scheduler.scheduler:JobScheduler",
    redbeat_redis_url=_settings.redis_url,
    # Said outright: the broker's transport options (priority steps, visibility timeout) are kombu's,
    # not redis-py's, and RedBeat's fallback to them is deprecated.
    redbeat_redis_options={},
    redbeat_key_prefix=keys.REDBEAT_PREFIX,
    redbeat_lock_key=keys.REDBEAT_LOCK,
    # One active beat: a second container waits for this lock, and takes over
    # within the timeout if the first dies.
    redbeat_lock_timeout=_settings.beat_lock_timeout_s,
    beat_max_loop_interval=min(MAX_LOOP_INTERVAL_S, _settings.beat_lock_timeout_s // 3),
)
