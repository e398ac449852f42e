"""Time limits of a run's stage tasks, by run kind: TASK_TIME_LIMIT_S, or the kind's own entry in TASK_TIME_LIMITS."""

from __future__ import annotations

from services.core.celery_app import soft_time_limit
from services.core.config import Settings
from services.core.exceptions import ConfigurationError
from services.core.pipeline.stages import KINDS

__all__ = ["kind_time_limits", "stage_time_limits"]


def kind_time_limits(settings: Settings) -> dict[str, int]:
    """Every run kind's hard limit in seconds; a kind TASK_TIME_LIMITS names that is no run kind is refused."""
    unknown = sorted(set(settings.task_time_limits) - set(KINDS))
    if unknown:
        raise ConfigurationError(f"TASK_TIME_LIMITS: unknown run kind(s) {unknown}: use {list(KINDS)}")
    return {kind: settings.task_time_limits.get(kind, settings.task_time_limit_s) for kind in KINDS}


def stage_time_limits(kind: str, settings: Settings) -> dict[str, int]:
    """The signature options every stage task of a run of `kind` is sent with."""
    hard = kind_time_limits(settings)[kind]
    return {"time_limit": hard, "soft_time_limit": soft_time_limit(hard)}
