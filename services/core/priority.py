"""Run priority: the operator's 0-9 scale, where 9 is the most urgent, and the broker's number for it."""

from __future__ import annotations

from collections.abc import Iterable

from kombu.transport.redis import Channel

__all__ = ["PRIORITIES", "DEFAULT_PRIORITY", "PRIORITY_STEPS", "PRIORITY_SEP", "check_priority", "broker_priority",
           "priority_keys"]

# Operators say 0 (can wait) … 9 (urgent), as AMQP brokers do; a run without one gets the default.
PRIORITIES = range(10)
DEFAULT_PRIORITY = 5
# One Redis list per level, so every level is distinct (kombu's default is only 0, 3, 6, 9).
PRIORITY_STEPS = list(PRIORITIES)
# kombu's Redis transport keeps one list per priority step: `<queue>` for step 0 (the most urgent)
# and `<queue>\x06\x16<step>` for the others (Channel._q_for_pri).
PRIORITY_SEP = Channel.sep


def check_priority(value: object) -> int:
    """The priority as an int; ValueError with the valid range for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
        raise ValueError(f"priority must be an integer from {PRIORITIES[0]} to {PRIORITIES[-1]} "
                         f"({PRIORITIES[-1]} most urgent), got {value!r}")
    return value


def broker_priority(priority: int) -> int:
    """The message priority to publish with, in the configured broker's order: kombu's Redis transport
    pops its lowest number first, RabbitMQ delivers its highest first."""
    from services.core.brokers import broker_of
    from services.core.config import get_settings

    # Reversed here, once, where the broker needs it: the rest of the code, the API and the docs
    # speak the operator's scale.
    if broker_of(get_settings().broker_url).lowest_priority_first:
        return PRIORITIES[-1] - check_priority(priority)
    return check_priority(priority)


def priority_keys(queue: str, steps: Iterable[int] = PRIORITY_STEPS, sep: str = PRIORITY_SEP,
                  prefix: str = "") -> list[str]:
    """Every Redis list holding `queue`'s waiting messages, one per priority step, as kombu names them."""
    return [f"{prefix}{queue}{sep}{step}" if step else f"{prefix}{queue}" for step in sorted(set(steps))]
