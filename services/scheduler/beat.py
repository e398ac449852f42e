"""The beat process's app: the core Celery app with the schedule and RedBeat's lock attached.

Run as `celery -A services.scheduler.beat beat` (RedBeat is configured here, so
no `-S` flag is needed).
"""

from __future__ import annotations

from services.core import keys
from services.core.celery_app import app
from services.core.config import get_settings
from services.scheduler.schedule import build_schedule

__all__ = ["app"]

_settings = get_settings()
app.conf.update(
    beat_schedule=build_schedule(_settings.schedule_overrides),
    beat_scheduler="redbeat.RedBeatScheduler",
    redbeat_redis_url=_settings.redis_url,
    redbeat_key_prefix=keys.REDBEAT_PREFIX,
    redbeat_lock_key=keys.REDBEAT_LOCK,
    # One active beat: a second container waits for this lock, and takes over
    # within the timeout if the first dies.
    redbeat_lock_timeout=_settings.beat_lock_timeout_s,
    beat_max_loop_interval=min(5, _settings.beat_lock_timeout_s // 3),
)
