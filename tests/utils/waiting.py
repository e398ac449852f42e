"""Waiting in tests for something real processes do: poll a probe until it answers, or fail naming what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(probe: Callable[[], T], what: str, timeout: float = 60.0, interval: float = 0.2,
               detail: Callable[[], str] = lambda: "") -> T:
    """The probe's first truthy answer; after `timeout` seconds an AssertionError naming `what` (and `detail()`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    more = detail()
    raise AssertionError(f"{what} not seen within {timeout:g} s" + (f"\n{more}" if more else ""))
