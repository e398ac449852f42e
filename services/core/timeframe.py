"""Timeframe: a candle length parsed once from its ccxt name ("15m", "1h", "1d") and carried as a value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Timeframe", "LONGEST_MS"]

# The timeframes every component understands; the unit letters are ccxt's. Weeks and
# months are left out on purpose: bars are aligned to the epoch, and exchanges start
# weeks on Monday (the epoch was a Thursday) and months on the 1st.
_TIMEFRAME_UNITS_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
# No leading zero ("01h" would be a second name for 1h) and no zero-length bar, which would make
# every window endless and every timestamp aligned.
_TIMEFRAME_RE = re.compile(r"([1-9][0-9]*)([mhd])")
# No exchange serves a longer epoch-aligned bar; beyond it a typo (999999d) is not a timeframe,
# and every name that passes fits the database's varchar(8) (the longest is "10080m").
LONGEST_MS = 7 * _TIMEFRAME_UNITS_MS["d"]


def _length_ms(text: object) -> int:
    match = _TIMEFRAME_RE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"malformed timeframe {_clip(text)}: expected minutes, hours or days, "
                         "e.g. 1m, 15m, 1h, 4h, 1d")
    ms = int(match.group(1)) * _TIMEFRAME_UNITS_MS[match.group(2)]
    if ms > LONGEST_MS:
        raise ValueError(f"timeframe {_clip(text)} is too long: at most 7d")
    return ms


def _clip(text: object) -> str:
    """The value as quoted in an error: never more than a few characters of whatever was sent."""
    shown = repr(text)
    return shown if len(shown) <= 20 else shown[:17] + "..."


@dataclass(frozen=True)
class Timeframe:
    """One candle length: `name` as ccxt and the database spell it, `ms` its length.

    Equal names are equal timeframes; "60m" and "1h" are not, because the exchange and
    the candles table key on the name.
    """

    name: str
    # Derived from the name, never passed: a Timeframe whose length disagrees with its name cannot exist.
    ms: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ms", _length_ms(self.name))

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """The timeframe named `text`; ValueError if malformed (weeks, months and zero are refused)."""
        return cls(text)

    @property
    def seconds(self) -> int:
        """Length of one candle in seconds."""
        return self.ms // 1000

    def __str__(self) -> str:
        return self.name
