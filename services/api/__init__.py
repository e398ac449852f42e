"""The HTTP API: trigger pipeline runs, poll their status, read candles, signals and runs."""

from services.api.app import create_app

__all__ = ["create_app"]
