"""Prometheus exporter: queue depth, workers, task events and pipeline health, collected fresh on every scrape."""

__all__ = ["Exporter"]


def __getattr__(name: str):
    # Lazy, so `import services.exporter.queues` does not pull in Celery's app and its settings.
    if name == "Exporter":
        from services.exporter.service import Exporter
        return Exporter
    raise AttributeError(name)
