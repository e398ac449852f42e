"""Errors the services raise on purpose, each with a message an operator can act on."""

__all__ = [
    "CandleflowError",
    "ConfigurationError",
    "SourceError",
    "RetryableSourceError",
    "PermanentSourceError",
]


class CandleflowError(Exception):
    """Base of every deliberate candleflow error."""


class ConfigurationError(CandleflowError):
    """A setting is missing or malformed; the message names the variable."""


class SourceError(CandleflowError):
    """Fetching candles from a source failed."""


class RetryableSourceError(SourceError):
    """A transient failure (network, timeout, rate limit): worth retrying with backoff."""


class PermanentSourceError(SourceError):
    """A failure retrying cannot fix (bad symbol, bad request, auth, unsupported)."""
