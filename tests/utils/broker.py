"""Reading kombu's Redis lists in tests: a queue's waiting messages over all its priority lists."""

from __future__ import annotations

import json

import redis

from services.core.priority import PRIORITY_STEPS, priority_keys

__all__ = ["queued", "queued_messages"]


def queued(client: redis.Redis, queue: str) -> int:
    """Messages waiting in `queue`, whatever their priority."""
    return sum(client.llen(key) for key in priority_keys(queue, PRIORITY_STEPS))


def queued_messages(client: redis.Redis, queue: str) -> list[dict]:
    """The messages waiting in `queue`, decoded, most urgent list first."""
    return [json.loads(raw) for key in priority_keys(queue, PRIORITY_STEPS) for raw in client.lrange(key, 0, -1)]
