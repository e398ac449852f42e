"""Instants: parsing what operators type (ISO dates/times, UTC unless stated, or epoch ms); epoch ms ↔ UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["parse_instant_ms", "parse_instant", "ms_to_datetime", "datetime_to_ms", "canonical_instant", "iso_utc"]

# Candles exist only after the epoch; past year 9999 Python's datetime cannot follow.
_EARLIEST_MS = 0
_LATEST_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def ms_to_datetime(ts_ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    # Integer arithmetic, not fromtimestamp(ms / 1000): no float in between to round.
    return _EPOCH + ts_ms * _MS


def datetime_to_ms(value: datetime) -> int:
    """An aware datetime as milliseconds since the epoch (sub-millisecond parts floored)."""
    return (value - _EPOCH) // _MS


def parse_instant_ms(value: str | int) -> int:
    """'2024-01-01', '2024-01-01T12:00', '...+02:00' or epoch milliseconds → epoch ms (UTC)."""
    # isdigit() alone admits '²' and other Unicode digits that int() refuses with its own message.
    if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        ms = int(value)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            ms = datetime_to_ms(parsed)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"malformed date {value!r}: expected ISO 8601 like 2024-01-31 or "
                             f"2024-01-31T12:00Z, or epoch milliseconds") from None
    if not _EARLIEST_MS <= ms <= _LATEST_MS:
        raise ValueError(f"date {value!r} is out of range (years 1970 to 9999)")
    return ms


def parse_instant(value: str | int | None) -> datetime | None:
    """Like parse_instant_ms, as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    return ms_to_datetime(parse_instant_ms(value))


def canonical_instant(value: str | int) -> str:
    """One spelling per instant, UTC with a Z ('2024-01-01' and '1704067200000' both give
    '2024-01-01T00:00:00Z'), so requests with the same effect compare equal."""
    ms = parse_instant_ms(value)
    spec = "seconds" if ms % 1000 == 0 else "milliseconds"
    return ms_to_datetime(ms).isoformat(timespec=spec).replace("+00:00", "Z")


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC whatever the database session's time zone; None stays None."""
    return value.astimezone(UTC).isoformat() if value is not None else None
