"""The shared foundation (settings, Celery app, database, models, Redis keys), the store, and the pipeline."""
