"""Alembic migrations of the candleflow schema (run by `candleflow migrate`)."""
