"""After Redis comes back: when the API, the exporter and the beat each show they reconnected by themselves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from services.core.keys import REDBEAT_LOCK
from tests.e2e.stack import ComposeStack, http

__all__ = ["Probe", "reconnect_probes", "ReconnectWatch"]

Probe = Callable[[], bool]


def _answers(url: str, wanted: Callable[[object], bool]) -> bool:
    try:
        reply = http("GET", url, timeout=5)
    except OSError:
        return False
    return reply.status == 200 and wanted(reply.text)


def _beat_renews(client: redis.Redis) -> Probe:
    """The lock's TTL goes up: some beat wrote it after the outage (AOF brings the old key back with the
    time it had left, which only goes down)."""
    last: list[int] = []

    def renewed() -> bool:
        try:
            ttl = client.pttl(REDBEAT_LOCK)
        except redis.RedisError:
            return False
        renewed_now = bool(last) and ttl > last[-1] + 500
        last.append(ttl)
        return renewed_now
    return renewed


def reconnect_probes(stack: ComposeStack) -> dict[str, Probe]:
    """name → a probe true once that process has reconnected: the API's readiness (Redis, Postgres and a
    consumer per queue), an exporter scrape carrying the queue depth it reads from Redis on every scrape,
    the beat's lock renewed."""
    client = redis.Redis(host="127.0.0.1", port=int(stack.env["REDIS_PORT"]), socket_timeout=2,
                         socket_connect_timeout=2)
    return {
        "api": lambda: _answers(stack.url("API_PORT", "/api/health"), lambda _text: True),
        "exporter": lambda: _answers(stack.url("EXPORTER_PORT", "/metrics"),
                                     lambda text: "\ncandleflow_queue_depth{" in text),
        "beat": _beat_renews(client),
    }


class ReconnectWatch:
    """Polls the probes in a thread from Redis' return until each has passed or `bound_s` is over."""

    def __init__(self, probes: dict[str, Probe], bound_s: float) -> None:
        self.probes, self.bound_s = probes, bound_s
        self.seconds: dict[str, float] = {}
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._since = 0.0

    def start(self) -> ReconnectWatch:
        self._since = time.monotonic()
        self._thread.start()
        return self

    def _watch(self) -> None:
        while len(self.seconds) < len(self.probes) and time.monotonic() - self._since < self.bound_s:
            for name, probe in self.probes.items():
                if name not in self.seconds and probe():
                    self.seconds[name] = time.monotonic() - self._since
            time.sleep(0.5)

    def result(self) -> tuple[dict[str, float], list[str]]:
        """(seconds each took, the names that never reconnected within the bound)."""
        self._thread.join()
        return dict(self.seconds), [name for name in self.probes if name not in self.seconds]
