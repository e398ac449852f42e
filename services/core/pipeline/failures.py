"""A failed instrument's error as the run status shows it: short, classified, never SQL or a traceback."""

from __future__ import annotations

from services.core.exceptions import CandleflowError, SourceError

__all__ = ["describe_failure"]

# Matched on the class names of the exception and of what caused it, most specific first, so
# core needs neither ccxt nor the database driver to classify their errors. The status is
# readable without a token: only the label goes there; the worker log keeps the full text.
_LABELS: tuple[tuple[str, str], ...] = (
    ("SoftTimeLimitExceeded", "time limit exceeded"),
    ("TimeLimitExceeded", "time limit exceeded"),
    # ccxt, behind our SourceError
    ("RequestTimeout", "exchange timeout"),
    ("RateLimitExceeded", "exchange rate limit"),
    ("DDoSProtection", "exchange rate limit"),
    ("OnMaintenance", "exchange unavailable"),
    ("ExchangeNotAvailable", "exchange unavailable"),
    ("NetworkError", "exchange unreachable"),
    ("BadSymbol", "rejected: the exchange does not know the symbol"),
    ("AuthenticationError", "exchange refused access"),
    ("PermissionDenied", "exchange refused access"),
    ("BadRequest", "exchange rejected the request"),
    # SQLAlchemy
    ("DataError", "rejected by the database: a value does not fit"),
    ("IntegrityError", "database constraint violated"),
    ("OperationalError", "database unavailable"),
    ("DBAPIError", "database error"),
    # redis-py
    ("ConnectionError", "redis unavailable"),
    ("TimeoutError", "redis timeout"),
)
_LONGEST = 200


def _names(exc: BaseException) -> list[str]:
    """Class names of `exc` and of its causes, each with its bases, nearest first."""
    names: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names += [klass.__name__ for klass in type(current).__mro__]
        current = current.__cause__ or current.__context__
    return names


def describe_failure(exc: BaseException) -> str:
    """The short label for `exc`; our own errors keep their message, which we wrote for operators."""
    names = _names(exc)
    for name, label in _LABELS:
        if name in names:
            return label
    if isinstance(exc, SourceError | CandleflowError):
        # Written by us, about the request (e.g. "kraken does not list symbol 'ZZ/ZZ'").
        return f"rejected: {str(exc)[:_LONGEST]}"
    return f"internal error ({type(exc).__name__}); see the worker logs"
