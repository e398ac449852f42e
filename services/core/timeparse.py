"""Parsing the instants operators type: ISO dates/times (UTC unless stated) or epoch ms."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["parse_instant_ms"]


def parse_instant_ms(value: str | int) -> int:
    """'2024-01-01', '2024-01-01T12:00', '...+02:00' or epoch milliseconds → epoch ms (UTC)."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"malformed date {value!r}: expected ISO 8601 like 2024-01-31 or 2024-01-31T12:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)
