"""Shared foundation (settings, Celery app, database, models, logging, errors, Redis keys), the store and the pipeline."""
