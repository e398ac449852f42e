"""Reading kombu's Redis lists in tests: a queue's waiting messages over all its priority lists."""

from __future__ import annotations

import redis

from services.core.priority import PRIORITY_STEPS
from services.exporter.queues import priority_keys

__all__ = ["queued"]


def queued(client: redis.Redis, queue: str) -> int:
    """Messages waiting in `queue`, whatever their priority."""
    return sum(client.llen(key) for key in priority_keys(queue, PRIORITY_STEPS))
