"""The WSGI entry point: `gunicorn services.api.wsgi:app`."""

from services.api.app import create_app
from services.core.config import get_settings
from services.core.logging import configure_logging

__all__ = ["app"]

configure_logging(get_settings().log_level, get_settings().log_format)
app = create_app()
