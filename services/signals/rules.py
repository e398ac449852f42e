"""Trading-signal strategies: pure rules turning candles and indicators into buy/sell signals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "SIGNAL_COLUMNS",
    "STRATEGIES",
    "EmaChannelBreakoutParams",
    "MacdCrossAdxParams",
    "RsiMeanReversionParams",
    "crossed_above",
    "crossed_below",
    "ema_channel_breakout",
    "generate_signals",
    "macd_cross_adx",
    "rsi_mean_reversion",
]

SIGNAL_COLUMNS = ["ts", "strategy", "side", "strength", "price", "inputs"]


@dataclass(frozen=True)
class EmaChannelBreakoutParams:
    """Breakout of the EMA(33) high/low channel in the direction of the regime."""

    full_strength_width: float = 0.5  # distance past the channel, in channel widths, that earns strength 1


@dataclass(frozen=True)
class RsiMeanReversionParams:
    """RSI leaving oversold/overbought while the market ranges."""

    oversold: float = 30.0
    overbought: float = 70.0
    full_strength_points: float = 10.0  # RSI points past the threshold that earn strength 1


@dataclass(frozen=True)
class MacdCrossAdxParams:
    """MACD crossing its signal line while ADX says a trend is present."""

    adx_min: float = 20.0
    adx_full: float = 40.0  # ADX at which strength reaches 1


# Indicator columns each rule reads; a bar is skipped unless all are known on it and the bar before.
_BREAKOUT_NEEDS = ("channel_high", "channel_low", "regime")
_RSI_NEEDS = ("rsi", "regime")
_MACD_NEEDS = ("macd", "macd_signal", "adx")


def _previous(value: pd.Series | float) -> pd.Series | float:
    return value.shift(1) if isinstance(value, pd.Series) else value


def crossed_above(series: pd.Series, level: pd.Series | float) -> pd.Series:
    """Previous bar at or below the level, this bar strictly above it; NaN on either bar is no cross."""
    return (_previous(series) <= _previous(level)) & (series > level)


def crossed_below(series: pd.Series, level: pd.Series | float) -> pd.Series:
    """Previous bar at or above the level, this bar strictly below it; NaN on either bar is no cross."""
    return (_previous(series) >= _previous(level)) & (series < level)


def _scaled(distance: Any, full: Any) -> np.ndarray:
    """distance / full clipped to 0..1; with no positive scale any positive distance is full strength."""
    distance = np.asarray(distance, dtype="float64")
    full = np.broadcast_to(np.asarray(full, dtype="float64"), distance.shape)
    ratio = np.divide(distance, full, out=np.where(distance > 0, 1.0, 0.0), where=full > 0)
    return np.clip(ratio, 0.0, 1.0)


def _require(candles: pd.DataFrame, indicators: pd.DataFrame, needs: Sequence[str]) -> None:
    missing = [col for col in needs if col not in indicators.columns]
    if missing or "close" not in candles.columns:
        raise ValueError(f"missing columns: {', '.join(missing or ['close'])}")
    if not candles.index.equals(indicators.index):
        raise ValueError("candles and indicators must share the same index")


def _inputs(where: np.ndarray, close: pd.Series, values: pd.DataFrame, settings: dict) -> list[dict[str, Any]]:
    """Everything that decided each fired bar: both bars of every crossing, plus the parameters."""
    # tolist() yields plain Python floats and strings, so the dicts are JSON-serialisable as they are.
    columns = {"close": close.tolist(), **{col: values[col].tolist() for col in values.columns}}
    rows = []
    for i in where:
        row: dict[str, Any] = {}
        for col, series in columns.items():
            row[col], row[f"prev_{col}"] = series[i], series[i - 1]
        row["params"] = dict(settings)
        rows.append(row)
    return rows


def _empty(index: pd.Index) -> pd.DataFrame:
    ts_dtype = index.dtype if isinstance(index, pd.DatetimeIndex) else "datetime64[us, UTC]"
    return pd.DataFrame(
        {
            "ts": pd.Series(dtype=ts_dtype),
            "strategy": pd.Series(dtype="str"),
            "side": pd.Series(dtype="str"),
            "strength": pd.Series(dtype="float64"),
            "price": pd.Series(dtype="float64"),
            "inputs": pd.Series(dtype=object),
        }
    )


def _signals(
    name: str,
    candles: pd.DataFrame,
    indicators: pd.DataFrame,
    params: Any,
    buy: pd.Series,
    sell: pd.Series,
    strength: np.ndarray,
    needs: Sequence[str],
) -> pd.DataFrame:
    """Signal rows for the bars where buy or sell fired and every needed indicator is known."""
    known = indicators[list(needs)].notna().all(axis=1)
    fired = (buy | sell) & known & known.shift(1, fill_value=False)
    where = np.flatnonzero(fired.to_numpy(dtype=bool))
    if not len(where):
        return _empty(candles.index)
    close = candles["close"].astype("float64")
    return pd.DataFrame(
        {
            "ts": candles.index[where],
            "strategy": name,
            "side": np.where(buy.to_numpy(dtype=bool)[where], "buy", "sell"),
            "strength": np.asarray(strength, dtype="float64")[where],
            "price": close.to_numpy()[where],
            "inputs": _inputs(where, close, indicators[list(needs)], asdict(params)),
        }
    )


def ema_channel_breakout(
    candles: pd.DataFrame, indicators: pd.DataFrame, params: EmaChannelBreakoutParams = EmaChannelBreakoutParams()
) -> pd.DataFrame:
    """Buy a close crossing above channel_high in an uptrend; sell one crossing below channel_low in a downtrend."""
    _require(candles, indicators, _BREAKOUT_NEEDS)
    close, upper, lower = candles["close"], indicators["channel_high"], indicators["channel_low"]
    regime = indicators["regime"]
    buy = crossed_above(close, upper) & (regime == "trending_up")
    sell = crossed_below(close, lower) & (regime == "trending_down")
    beyond = np.where(buy, close - upper, lower - close)
    strength = _scaled(beyond, params.full_strength_width * (upper - lower))
    return _signals("ema_channel_breakout", candles, indicators, params, buy, sell, strength, _BREAKOUT_NEEDS)


def rsi_mean_reversion(
    candles: pd.DataFrame, indicators: pd.DataFrame, params: RsiMeanReversionParams = RsiMeanReversionParams()
) -> pd.DataFrame:
    """In a ranging market, buy RSI crossing up through oversold; sell it crossing down through overbought."""
    _require(candles, indicators, _RSI_NEEDS)
    rsi, ranging = indicators["rsi"], indicators["regime"] == "ranging"
    buy = crossed_above(rsi, params.oversold) & ranging
    sell = crossed_below(rsi, params.overbought) & ranging
    beyond = np.where(buy, rsi - params.oversold, params.overbought - rsi)
    strength = _scaled(beyond, params.full_strength_points)
    return _signals("rsi_mean_reversion", candles, indicators, params, buy, sell, strength, _RSI_NEEDS)


def macd_cross_adx(
    candles: pd.DataFrame, indicators: pd.DataFrame, params: MacdCrossAdxParams = MacdCrossAdxParams()
) -> pd.DataFrame:
    """Buy MACD crossing above its signal line, sell crossing below, only while ADX >= adx_min."""
    _require(candles, indicators, _MACD_NEEDS)
    macd, line, adx = indicators["macd"], indicators["macd_signal"], indicators["adx"]
    trending = adx >= params.adx_min
    buy = crossed_above(macd, line) & trending
    sell = crossed_below(macd, line) & trending
    strength = _scaled(adx - params.adx_min, params.adx_full - params.adx_min)
    return _signals("macd_cross_adx", candles, indicators, params, buy, sell, strength, _MACD_NEEDS)


Strategy = Callable[[pd.DataFrame, pd.DataFrame, Any], pd.DataFrame]

STRATEGIES: dict[str, tuple[Strategy, Any]] = {
    "ema_channel_breakout": (ema_channel_breakout, EmaChannelBreakoutParams()),
    "rsi_mean_reversion": (rsi_mean_reversion, RsiMeanReversionParams()),
    "macd_cross_adx": (macd_cross_adx, MacdCrossAdxParams()),
}


def _closed_bars(index: pd.Index, closed_mask: pd.Series | None) -> np.ndarray:
    if closed_mask is None:
        return np.ones(len(index), dtype=bool)
    if not closed_mask.index.equals(index):
        raise ValueError("closed_mask must be aligned with the candles' index")
    # eq(True) turns a missing flag into False: a bar not known to be closed never signals.
    return closed_mask.eq(True).to_numpy(dtype=bool)


def generate_signals(
    candles: pd.DataFrame,
    indicators: pd.DataFrame,
    closed_mask: pd.Series | None = None,
    names: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run the named strategies (all by default) and return their signals on closed bars, by ts then strategy.

    `params` maps a strategy name to its params object, overriding the registry default.
    """
    chosen = list(STRATEGIES) if names is None else list(names)
    unknown = [name for name in chosen if name not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies: {', '.join(unknown)}")
    closed = _closed_bars(candles.index, closed_mask)
    found = []
    for name in chosen:
        rule, defaults = STRATEGIES[name]
        signals = rule(candles, indicators, (params or {}).get(name, defaults))
        signals = signals[closed[candles.index.get_indexer(signals["ts"])]]
        if not signals.empty:
            found.append(signals)
    if not found:
        return _empty(candles.index)
    rows = pd.concat(found, ignore_index=True)
    return rows.sort_values(["ts", "strategy"], kind="stable", ignore_index=True)[SIGNAL_COLUMNS]
