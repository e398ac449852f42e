"""Reading query parameters: unknown or repeated names and malformed values become a 400 naming them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from flask import request

from services.api.errors import bad_parameter
from services.core.config import SYMBOL_RE, timeframe_seconds  # filters accept what can be configured
from services.core.timeparse import parse_instant

__all__ = ["read_query", "symbol_param", "timeframe_param", "instant_param", "limit_param", "choice_param",
           "name_param", "boolean_param", "check_order"]

_DIGITS_RE = re.compile(r"[0-9]{1,9}")
_NAME_RE = r"[A-Za-z0-9_.:-]{1,64}"
# Control characters (NUL, newline...) have no place in any parameter; Postgres even refuses NUL.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def read_query(accepted: Iterable[str]) -> dict[str, str]:
    """The query string as a dict; a typo'd or repeated parameter is refused rather than silently ignored."""
    accepted = tuple(accepted)
    params: dict[str, str] = {}
    for name, values in request.args.lists():
        if name not in accepted:
            expected = ", ".join(accepted) or "none"
            raise bad_parameter(name, f"unknown parameter {name!r}; this route accepts: {expected}")
        if len(values) > 1:
            raise bad_parameter(name, f"parameter {name!r} given {len(values)} times; give it once")
        if _CONTROL_RE.search(values[0]):
            raise bad_parameter(name, f"parameter {name!r} contains control characters")
        params[name] = values[0]
    return params


def symbol_param(value: str, name: str = "symbol") -> str:
    if not SYMBOL_RE.fullmatch(value):
        raise bad_parameter(name, f"malformed symbol {value!r}: expected BASE/QUOTE in capitals, e.g. BTC/USD")
    return value


def timeframe_param(value: str, name: str = "timeframe") -> str:
    try:
        timeframe_seconds(value)
    except ValueError as exc:
        raise bad_parameter(name, str(exc)) from None
    return value


def instant_param(value: str, name: str) -> datetime:
    """An ISO 8601 date/time (UTC unless stated) or epoch ms, as an aware UTC datetime."""
    try:
        instant = parse_instant(value)
    except ValueError as exc:
        raise bad_parameter(name, str(exc)) from None
    except (OverflowError, OSError):  # epoch ms or offsets beyond what a datetime can hold
        raise bad_parameter(name, f"date {value[:40]!r} is out of range") from None
    assert instant is not None
    return instant


def limit_param(value: str | None, default: int, maximum: int, name: str = "limit") -> int:
    if value is None:
        return default
    if not _DIGITS_RE.fullmatch(value) or not 1 <= int(value) <= maximum:
        raise bad_parameter(name, f"{name} must be an integer from 1 to {maximum}, got {value[:20]!r}")
    return int(value)


def choice_param(value: str, name: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise bad_parameter(name, f"unknown {name} {value[:40]!r}; valid: {', '.join(choices)}")
    return value


def name_param(value: str, name: str, pattern: str = _NAME_RE) -> str:
    """An identifier (strategy, exchange, task id): a restricted alphabet keeps NULs and junk out of SQL."""
    if not re.fullmatch(pattern, value):
        raise bad_parameter(name, f"malformed {name} {value[:40]!r}: letters, digits, '_', '.', ':' or '-' only")
    return value


def boolean_param(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise bad_parameter(name, f"{name} must be true or false, got {value[:20]!r}")
    return lowered == "true"


def check_order(since: datetime | None, until: datetime | None) -> None:
    """A range must be non-empty: since before until."""
    if since is not None and until is not None and until <= since:
        raise bad_parameter("until", "until must be after since")
