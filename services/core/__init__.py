"""Shared foundation: settings, Celery app, database, logging, errors."""
