"""Indicator periods and regime thresholds: one frozen, validated value object."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["IndicatorParams"]

# TA-Lib refuses periods below 2 for RSI, SMA, EMA, ADX and BBANDS; a period of 1
# is no smoothing at all, so it is refused here too rather than silently accepted.
MIN_PERIOD = 2

# (faster, slower) pairs whose order gives the indicators their meaning.
_ORDERED_PAIRS = (("sma_fast", "sma_slow"), ("ema_fast", "ema_slow"), ("macd_fast", "macd_slow"))


@dataclass(frozen=True)
class IndicatorParams:
    """Periods (in bars) of every indicator and the ADX level that marks a trend.

    Validated on construction: a bad value raises ValueError naming the field.
    Frozen and hashable, so it can key caches and be logged with the values it made.
    """

    rsi: int = 14
    sma_fast: int = 20
    sma_slow: int = 50
    ema_fast: int = 20
    ema_slow: int = 50
    ema_trend: int = 200
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    adx: int = 14
    atr: int = 14
    bb_period: int = 20
    bb_k: float = 2.0
    channel: int = 33
    regime_adx_min: float = 25.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "int":
                object.__setattr__(self, field.name, _period(field.name, value))
            else:
                object.__setattr__(self, field.name, _real(field.name, value))
        if self.bb_k <= 0:
            raise ValueError(f"bb_k must be > 0, got {self.bb_k!r}")
        if not 0.0 <= self.regime_adx_min <= 100.0:
            raise ValueError(f"regime_adx_min must be within 0..100 (ADX scale), got {self.regime_adx_min!r}")
        for fast, slow in _ORDERED_PAIRS:
            if getattr(self, fast) >= getattr(self, slow):
                raise ValueError(
                    f"{fast} must be less than {slow}, got {fast}={getattr(self, fast)} {slow}={getattr(self, slow)}"
                )

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any] | None) -> IndicatorParams:
        """Defaults overridden by `overrides` (e.g. an instrument's settings), validated."""
        overrides = dict(overrides or {})
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown indicator parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return cls(**overrides)


def _period(name: str, value: Any) -> int:
    """A period as a plain int, or ValueError naming the field."""
    # bool is an int subclass, but `rsi: true` in a config file is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < MIN_PERIOD:
        raise ValueError(f"{name} must be an integer >= {MIN_PERIOD}, got {value!r}")
    return int(value)


def _real(name: str, value: Any) -> float:
    """A finite float, or ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value or abs(value) == float("inf"):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)
