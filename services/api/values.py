"""Stored values as the read routes show them: instants in UTC ISO 8601, numbers only when finite."""

from __future__ import annotations

import math

from services.core.timeparse import iso_utc

__all__ = ["iso_utc", "finite"]


def finite(value: float | None) -> float | None:
    """The number, or None for NaN and ±Infinity."""
    # JSON has no NaN or Infinity; a client parser would choke on them.
    return value if value is None or math.isfinite(value) else None
