"""Candlestick-pattern detectors: pure, vectorised functions over an OHLCV frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "PATTERNS",
    "PATTERN_COLUMNS",
    "PatternParams",
    "bearish_engulfing",
    "bullish_engulfing",
    "detect_patterns",
    "doji",
    "evening_star",
    "hammer",
    "morning_star",
    "shooting_star",
]

PATTERN_COLUMNS = ["ts", "pattern", "direction", "strength"]
_OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True)
class PatternParams:
    """Thresholds for every detector; ratios are fractions of the bar's range unless named otherwise."""

    doji_body_max: float = 0.1  # body / range at or below which a bar is a doji
    hammer_body_max: float = 0.35  # body / range: the hammer's body must be small
    hammer_shadow_min: float = 2.0  # long shadow / body: the shadow must dwarf the body
    hammer_opposite_shadow_max: float = 0.1  # other shadow / range: little or no opposite shadow
    trend_lookback: int = 5  # bars over which the prior decline/advance is measured
    star_first_body_min: float = 0.6  # body / range of the star's long first candle
    star_body_max: float = 0.3  # star body / first body: the middle candle is small
    star_penetration_min: float = 0.5  # how far (fraction of first body) the third close reaches back into it


@dataclass(frozen=True)
class _Shape:
    """Per-bar candle geometry shared by the detectors."""

    open: pd.Series
    close: pd.Series
    body: pd.Series
    range: pd.Series
    upper: pd.Series
    lower: pd.Series


def _shape(candles: pd.DataFrame) -> _Shape:
    o, h, lo, c = (candles[col].astype("float64") for col in _OHLC)
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    # A zero-range bar has no geometry; NaN keeps every ratio test False on it.
    span = (h - lo).where(h > lo)
    return _Shape(o, c, (c - o).abs(), span, h - top, bottom - lo)


def _ratio(part: pd.Series, whole: pd.Series) -> pd.Series:
    return part / whole.where(whole > 0)


def _strength(fired: pd.Series, value: pd.Series) -> pd.Series:
    """Strength where the pattern completes, NaN elsewhere."""
    return value.clip(0.0, 1.0).where(fired)


def doji(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.Series:
    """Body at most `doji_body_max` of the range; strength 1 for a flat body, 0 at the limit."""
    s = _shape(candles)
    body_share = _ratio(s.body, s.range)
    fired = body_share <= params.doji_body_max
    return _strength(fired, 1.0 - body_share / params.doji_body_max)


def _declined(close: pd.Series, lookback: int) -> pd.Series:
    # Measured up to the bar before the pattern so the pattern bar cannot create its own context.
    return close.shift(1) < close.shift(1 + lookback)


def _advanced(close: pd.Series, lookback: int) -> pd.Series:
    return close.shift(1) > close.shift(1 + lookback)


def _long_shadow_bar(long: pd.Series, short: pd.Series, s: _Shape, p: PatternParams) -> pd.Series:
    return (
        (_ratio(s.body, s.range) <= p.hammer_body_max)
        & (long >= p.hammer_shadow_min * s.body)
        & (_ratio(short, s.range) <= p.hammer_opposite_shadow_max)
    )


def hammer(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.Series:
    """Small body on top of a long lower shadow, after a decline; strength = lower shadow / range."""
    s = _shape(candles)
    fired = _long_shadow_bar(s.lower, s.upper, s, params) & _declined(s.close, params.trend_lookback)
    return _strength(fired, _ratio(s.lower, s.range))


def shooting_star(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.Series:
    """Small body under a long upper shadow, after an advance; strength = upper shadow / range."""
    s = _shape(candles)
    fired = _long_shadow_bar(s.upper, s.lower, s, params) & _advanced(s.close, params.trend_lookback)
    return _strength(fired, _ratio(s.upper, s.range))


def bullish_engulfing(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.Series:
    """A rising body covering the previous falling body; strength = 1 - previous body / body."""
    s = _shape(candles)
    prev_open, prev_close, prev_body = s.open.shift(1), s.close.shift(1), s.body.shift(1)
    fired = (
        (prev_close < prev_open)
        & (s.close > s.open)
        & (s.open <= prev_close)
        & (s.close >= prev_open)
        & (s.body > prev_body)
    )
    return _strength(fired, 1.0 - _ratio(prev_body, s.body))


def bearish_engulfing(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.Series:
    """A falling body covering the previous rising body; strength = 1 - previous body / body."""
    s = _shape(candles)
    prev_open, prev_close, prev_body = s.open.shift(1), s.close.shift(1), s.body.shift(1)
    fired = (
        (prev_close > prev_open)
        & (s.close < s.open)
        & (s.open >= prev_close)
        & (s.close <= prev_open)
        & (s.body > prev_body)
    )
    return _strength(fired, 1.0 - _ratio(prev_body, s.body))


def _star(candles: pd.DataFrame, p: PatternParams, sign: float) -> pd.Series:
    """Three-bar reversal; sign=+1 is the morning star, -1 the evening star (prices mirrored)."""
    s = _shape(candles)
    # Mirroring prices lets one rule serve both stars: an evening star is a morning star upside down.
    o, c = sign * s.open, sign * s.close
    o1, c1, body1, range1 = o.shift(2), c.shift(2), s.body.shift(2), s.range.shift(2)
    o2, c2, body2 = o.shift(1), c.shift(1), s.body.shift(1)
    # No gap is demanded between first and star bodies: 24/7 markets open at the previous close.
    fired = (
        (c1 < o1)
        & (_ratio(body1, range1) >= p.star_first_body_min)
        & (body2 <= p.star_body_max * body1)
        & (np.maximum(o2, c2) <= c1)
        & (c > o)
        & (c >= c1 + p.star_penetration_min * body1)
    )
    return _strength(fired, _ratio(c - c1, body1))


def morning_star(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.Series:
    """Long falling bar, small star at or below its close, rising bar closing deep into the first body."""
    return _star(candles, params, 1.0)


def evening_star(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.Series:
    """Long rising bar, small star at or above its close, falling bar closing deep into the first body."""
    return _star(candles, params, -1.0)


Detector = Callable[[pd.DataFrame, PatternParams], pd.Series]

# name -> (detector, direction); order here is the order of same-bar rows in the output.
_DETECTORS: dict[str, tuple[Detector, str]] = {
    "doji": (doji, "neutral"),
    "hammer": (hammer, "bullish"),
    "shooting_star": (shooting_star, "bearish"),
    "bullish_engulfing": (bullish_engulfing, "bullish"),
    "bearish_engulfing": (bearish_engulfing, "bearish"),
    "morning_star": (morning_star, "bullish"),
    "evening_star": (evening_star, "bearish"),
}
PATTERNS: tuple[str, ...] = tuple(_DETECTORS)


def _empty(index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.Series(dtype=index.dtype if isinstance(index, pd.DatetimeIndex) else "datetime64[us, UTC]"),
            "pattern": pd.Series(dtype="str"),
            "direction": pd.Series(dtype="str"),
            "strength": pd.Series(dtype="float64"),
        }
    )


def detect_patterns(candles: pd.DataFrame, params: PatternParams = PatternParams()) -> pd.DataFrame:
    """Every detection as a row `ts, pattern, direction, strength`, ts being the completing bar.

    Rows are ordered by ts, then by the order of `PATTERNS`.
    """
    missing = [col for col in _OHLC if col not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns: {', '.join(missing)}")
    found = []
    for name, (detector, direction) in _DETECTORS.items():
        strength = detector(candles, params).dropna()
        if not strength.empty:
            found.append(
                pd.DataFrame(
                    {"ts": strength.index, "pattern": name, "direction": direction, "strength": strength.to_numpy()}
                )
            )
    if not found:
        return _empty(candles.index)
    rows = pd.concat(found, ignore_index=True)
    return rows.sort_values("ts", kind="stable").reset_index(drop=True)[PATTERN_COLUMNS]
