"""Transient failures are retried with jittered exponential backoff; others are not."""

import random

import pytest

from services.core.exceptions import PermanentSourceError, RetryableSourceError
from services.ingest.retry import RetriesExhausted, RetryPolicy, backoff_delay, call_with_retries


def test_backoff_ceiling_doubles_and_is_capped():
    policy = RetryPolicy(retries=10, base_s=1.0, cap_s=8.0)
    rng = random.Random(1)
    delays = [[backoff_delay(attempt, policy, rng) for _ in range(200)] for attempt in range(6)]
    assert max(delays[0]) <= 1.0 and max(delays[2]) <= 4.0 and max(delays[5]) <= 8.0
    assert max(delays[2]) > 2.0  # jitter spreads over the whole interval, not just its top
    assert min(delays[5]) < 4.0


def test_a_transient_failure_is_retried_until_it_succeeds():
    outcomes = iter([RetryableSourceError("429"), RetryableSourceError("502"), "rows"])
    slept = []

    def fetch():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result, attempts = call_with_retries(fetch, RetryPolicy(retries=5), "test", sleep=slept.append)
    assert (result, attempts) == ("rows", 3)
    assert len(slept) == 2


def test_retries_exhausted_reports_the_attempts_and_the_last_error():
    def fetch():
        raise RetryableSourceError("timed out")

    with pytest.raises(RetriesExhausted, match="gave up after 3 attempts: timed out") as info:
        call_with_retries(fetch, RetryPolicy(retries=2), "test", sleep=lambda s: None)
    assert info.value.attempts == 3


def test_a_permanent_failure_is_not_retried():
    calls = []

    def fetch():
        calls.append(1)
        raise PermanentSourceError("bad symbol")

    with pytest.raises(PermanentSourceError):
        call_with_retries(fetch, RetryPolicy(retries=5), "test", sleep=lambda s: None)
    assert len(calls) == 1
