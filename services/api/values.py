"""Stored values as the read routes show them: instants in UTC ISO 8601, numbers only when finite."""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["iso_utc", "finite"]


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC whatever the database session's time zone."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def finite(value: float | None) -> float | None:
    """The number, or None for NaN and ±Infinity."""
    # JSON has no NaN or Infinity; a client parser would choke on them.
    return value if value is None or math.isfinite(value) else None
