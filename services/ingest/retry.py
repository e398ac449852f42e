"""Retrying transient source failures with capped exponential backoff and full jitter."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from services.core.exceptions import RetryableSourceError

__all__ = ["RetryPolicy", "backoff_delay", "call_with_retries", "RetriesExhausted"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait between attempts."""

    retries: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0


class RetriesExhausted(RetryableSourceError):
    """Every attempt failed transiently; carries how many attempts were made."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)], so retrying workers spread out."""
    ceiling = min(policy.cap_s, policy.base_s * (2 ** attempt))
    return (rng or random).uniform(0, ceiling)


def call_with_retries(
    fetch: Callable[[], T],
    policy: RetryPolicy,
    describe: str,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """Run `fetch`, retrying RetryableSourceError; returns (result, attempts used)."""
    for attempt in range(policy.retries + 1):
        try:
            return fetch(), attempt + 1
        except RetryableSourceError as exc:
            if attempt == policy.retries:
                raise RetriesExhausted(f"{describe}: gave up after {attempt + 1} attempts: {exc}", attempt + 1) from exc
            delay = backoff_delay(attempt, policy)
            log.warning("%s: attempt %d failed (%s); retrying in %.2fs", describe, attempt + 1, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop either returns or raises
