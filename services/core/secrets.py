"""The one rule every secret obeys in production: present, not a placeholder, not short, no stray spaces."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MIN_SECRET_LENGTH", "PLACEHOLDERS", "weakness", "url_password"]

MIN_SECRET_LENGTH = 16
# Compared after lowercasing and dropping everything but letters and digits, so CHANGE_ME,
# change-me and " Change Me " are all the same placeholder.
PLACEHOLDERS = frozenset({
    "changeme", "change", "replaceme", "admin", "administrator", "password", "passw0rd", "secret", "default",
    "example", "test", "token", "apitoken", "candleflow", "flower", "grafana", "postgres", "redis", "guest",
    "letmein", "qwerty", "123456", "12345678", "none", "null",
})
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def weakness(value: str | None) -> str | None:
    """Why `value` is not a production secret, or None when it is one."""
    if value is None or value == "":
        return "is not set"
    if value != value.strip():
        # A token with a trailing space can never be sent back intact: every request would be refused.
        return "has leading or trailing whitespace"
    folded = _NOT_ALNUM.sub("", value.lower())
    if folded in PLACEHOLDERS or value.lower().startswith("change_me"):
        return "is a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is {len(value)} characters long; at least {MIN_SECRET_LENGTH} are required"
    if len(set(value)) < 4:
        return "uses fewer than 4 distinct characters"
    return None


def url_password(url: str) -> str | None:
    """The password inside a connection URL (redis://:pw@host, postgresql://user:pw@host), if any."""
    return urlsplit(url).password
