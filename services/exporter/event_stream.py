"""The background thread that consumes Celery's event stream and hands each event to its recorders."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from celery import Celery

__all__ = ["EventStream"]

log = logging.getLogger(__name__)


class EventStream(threading.Thread):
    """Captures events forever, reconnecting after broker failures; `stop()` ends it within a second."""

    def __init__(self, app: Celery, recorders: Iterable[Callable[[Mapping], None]],
                 reconnect_delay_s: float = 2.0) -> None:
        super().__init__(name="exporter-events", daemon=True)
        self._app = app
        self._recorders = tuple(recorders)
        self._reconnect_delay = reconnect_delay_s
        self._stopping = threading.Event()
        self._receiver = None
        self.connected = False
        self.events_received = 0

    def dispatch(self, event: Mapping) -> None:
        self.events_received += 1
        for record in self._recorders:
            try:
                record(event)
            except Exception:
                log.exception("could not record event %s", event.get("type"))

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._app.connection_for_read() as connection:
                    self._receiver = self._app.events.Receiver(connection, handlers={"*": self.dispatch})
                    self.connected = True
                    # wakeup: workers answer with a heartbeat at once, so they are known immediately.
                    self._receiver.capture(limit=None, timeout=None, wakeup=True)
            except Exception:
                log.warning("event stream lost; reconnecting in %.0fs", self._reconnect_delay, exc_info=True)
            finally:
                self.connected = False
            self._stopping.wait(self._reconnect_delay)

    def stop(self) -> None:
        self._stopping.set()
        if self._receiver is not None:
            self._receiver.should_stop = True
