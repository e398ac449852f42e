"""Run priority: the operator's 0-9 scale, where 9 is the most urgent, and the broker's number for it."""

from __future__ import annotations

__all__ = ["PRIORITIES", "DEFAULT_PRIORITY", "PRIORITY_STEPS", "check_priority", "broker_priority"]

# Operators say 0 (can wait) … 9 (urgent), as AMQP brokers do; a run without one gets the default.
PRIORITIES = range(10)
DEFAULT_PRIORITY = 5
# One Redis list per level, so every level is distinct (kombu's default is only 0, 3, 6, 9).
PRIORITY_STEPS = list(PRIORITIES)


def check_priority(value: object) -> int:
    """The priority as an int; ValueError with the valid range for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
        raise ValueError(f"priority must be an integer from {PRIORITIES[0]} to {PRIORITIES[-1]} "
                         f"({PRIORITIES[-1]} most urgent), got {value!r}")
    return value


def broker_priority(priority: int) -> int:
    """The message priority to publish with: kombu's Redis transport pops its lowest number first."""
    # Reversed here, once: the rest of the code, the API and the docs speak the operator's scale.
    return PRIORITIES[-1] - check_priority(priority)
