"""Parsing the instants operators type: ISO dates/times (UTC unless stated) or epoch ms."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["parse_instant_ms", "parse_instant"]


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


def parse_instant(value: str | int | None) -> datetime | None:
    """Like parse_instant_ms, as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    return datetime.fromtimestamp(parse_instant_ms(value) / 1000, tz=timezone.utc)
