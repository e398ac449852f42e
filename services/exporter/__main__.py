"""`python -m services.exporter`: serve the metrics on EXPORTER_PORT (default 9808) until SIGTERM."""

from __future__ import annotations

import signal
import threading

from services.core.config import get_settings
from services.core.logging import configure_logging
from services.exporter.service import Exporter

__all__ = ["main"]


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    exporter = Exporter.from_environment()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    exporter.start()
    stopping.wait()
    exporter.stop()


if __name__ == "__main__":
    main()
