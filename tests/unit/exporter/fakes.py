"""In-memory stand-ins for the exporter's sources: just enough Redis and SQLAlchemy for the collectors."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import SimpleNamespace

__all__ = ["FakeRedis", "FakeEngine", "celery_message"]


def celery_message(task_id: str, task: str = "signals.stage.signals", routing_key: str = "signals",
                   priority: int = 0, **headers) -> bytes:
    """A message as kombu's Redis transport stores it (the parts the exporter reads)."""
    return json.dumps({
        "body": "", "content-type": "application/json",
        "headers": {"id": task_id, "task": task, **headers},
        "properties": {"delivery_info": {"exchange": "", "routing_key": routing_key}, "priority": priority,
                       "delivery_tag": f"tag-{task_id}"},
    }).encode()


class FakeRedis:
    """Lists, hashes and sorted sets with a non-transactional pipeline; `fail` makes every command raise."""

    def __init__(self) -> None:
        self.lists: dict[str, list[bytes]] = {}
        self.hashes: dict[str, dict[bytes, bytes]] = {}
        self.zsets: dict[str, dict[bytes, float]] = {}
        self.fail: Exception | None = None
        self.round_trips = 0

    # writers, named as redis-py names them
    def lpush(self, key: str, *values: bytes) -> None:
        for value in values:
            self.lists.setdefault(key, []).insert(0, value)

    def hset(self, key: str, field: str, value: bytes) -> None:
        self.hashes.setdefault(key, {})[field.encode()] = value

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        self.zsets.setdefault(key, {}).update({k.encode(): v for k, v in mapping.items()})

    # readers
    def llen(self, key: str) -> int:
        self._guard()
        return len(self.lists.get(key, []))

    def lindex(self, key: str, index: int) -> bytes | None:
        self._guard()
        items = self.lists.get(key, [])
        return items[index] if -len(items) <= index < len(items) else None

    def hlen(self, key: str) -> int:
        self._guard()
        return len(self.hashes.get(key, {}))

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        self._guard()
        return dict(self.hashes.get(key, {}))

    def hget(self, key: str, field: str) -> bytes | None:
        self._guard()
        return self.hashes.get(key if isinstance(key, str) else key.decode(), {}).get(field.encode())

    def zrange(self, key: str, start: int, end: int, withscores: bool = False) -> list:
        self._guard()
        items = sorted(self.zsets.get(key, {}).items(), key=lambda item: item[1])
        items = items[start:] if end == -1 else items[start:end + 1]
        return items if withscores else [member for member, _ in items]

    def pipeline(self, transaction: bool = True) -> _Pipeline:
        return _Pipeline(self)

    def _guard(self) -> None:
        if self.fail is not None:
            raise self.fail


class _Pipeline:
    def __init__(self, client: FakeRedis) -> None:
        self._client = client
        self._queued: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> Callable:
        def queue(*args, **kwargs):
            self._queued.append((name, args, kwargs))
            return self
        return queue

    def execute(self) -> list:
        self._client.round_trips += 1
        return [getattr(self._client, name)(*args, **kwargs) for name, args, kwargs in self._queued]


class FakeEngine:
    """Answers each query with the rows registered for a phrase in its SQL; an Exception row raises."""

    def __init__(self, answers: Mapping[str, list[dict] | Exception]) -> None:
        self._answers = dict(answers)

    def connect(self) -> _Connection:
        return _Connection(self._answers)


class _Connection:
    def __init__(self, answers: Mapping[str, list[dict] | Exception]) -> None:
        self._answers = answers

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def rollback(self) -> None:
        return None

    def execute(self, statement, params=None) -> SimpleNamespace:
        sql = str(statement)
        if "set_config" in sql:
            return SimpleNamespace(all=lambda: [])
        for phrase, answer in self._answers.items():
            if phrase in sql:
                if isinstance(answer, Exception):
                    raise answer
                return SimpleNamespace(all=lambda answer=answer: [SimpleNamespace(**row) for row in answer])
        return SimpleNamespace(all=lambda: [])
