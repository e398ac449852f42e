"""Trading-signal strategies: pure rules turning candles and indicators into buy/sell signals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from services.signals.bars import Bars

__all__ = [
    "SIGNAL_COLUMNS",
    "STRATEGIES",
    "EmaChannelBreakoutParams",
    "Found",
    "MacdCrossAdxParams",
    "NEEDED_COLUMNS",
    "RsiMeanReversionParams",
    "crossed_above",
    "crossed_below",
    "ema_channel_breakout",
    "find_signals",
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


def _rose_through(bars: Bars, series: np.ndarray, level: np.ndarray | float) -> np.ndarray:
    """Previous bar at or below the level, this bar strictly above it; NaN on either bar is no cross."""
    return (bars.previous(series) <= bars.previous(level)) & (series > level)


def _fell_through(bars: Bars, series: np.ndarray, level: np.ndarray | float) -> np.ndarray:
    """Previous bar at or above the level, this bar strictly below it; NaN on either bar is no cross."""
    return (bars.previous(series) >= bars.previous(level)) & (series < level)


def _crossing(cross: Callable, series: pd.Series, level: pd.Series | float) -> pd.Series:
    bars = Bars(np.zeros(len(series)), {}, np.arange(len(series)) == 0)
    values = level.to_numpy("float64") if isinstance(level, pd.Series) else level
    return pd.Series(cross(bars, series.to_numpy("float64"), values), index=series.index)


def crossed_above(series: pd.Series, level: pd.Series | float) -> pd.Series:
    """Previous bar at or below the level, this bar strictly above it; NaN on either bar is no cross."""
    return _crossing(_rose_through, series, level)


def crossed_below(series: pd.Series, level: pd.Series | float) -> pd.Series:
    """Previous bar at or above the level, this bar strictly below it; NaN on either bar is no cross."""
    return _crossing(_fell_through, series, level)


def _scaled(distance: Any, full: Any) -> np.ndarray:
    """distance / full clipped to 0..1; with no positive scale any positive distance is full strength."""
    distance = np.asarray(distance, dtype="float64")
    full = np.broadcast_to(np.asarray(full, dtype="float64"), distance.shape)
    ratio = np.divide(distance, full, out=np.where(distance > 0, 1.0, 0.0), where=full > 0)
    return np.clip(ratio, 0.0, 1.0)


# A rule's decision on every bar: (buy, sell, strength), elementwise over Bars.
Decision = tuple[np.ndarray, np.ndarray, np.ndarray]


def _breakout(bars: Bars, params: EmaChannelBreakoutParams) -> Decision:
    close, upper, lower = bars.close, bars.number("channel_high"), bars.number("channel_low")
    regime = bars.text("regime")
    buy = _rose_through(bars, close, upper) & (regime == "trending_up")
    sell = _fell_through(bars, close, lower) & (regime == "trending_down")
    beyond = np.where(buy, close - upper, lower - close)
    return buy, sell, _scaled(beyond, params.full_strength_width * (upper - lower))


def _rsi_reversion(bars: Bars, params: RsiMeanReversionParams) -> Decision:
    rsi, ranging = bars.number("rsi"), bars.text("regime") == "ranging"
    buy = _rose_through(bars, rsi, params.oversold) & ranging
    sell = _fell_through(bars, rsi, params.overbought) & ranging
    beyond = np.where(buy, rsi - params.oversold, params.overbought - rsi)
    return buy, sell, _scaled(beyond, params.full_strength_points)


def _macd_adx(bars: Bars, params: MacdCrossAdxParams) -> Decision:
    macd, line, adx = bars.number("macd"), bars.number("macd_signal"), bars.number("adx")
    trending = adx >= params.adx_min
    buy = _rose_through(bars, macd, line) & trending
    sell = _fell_through(bars, macd, line) & trending
    return buy, sell, _scaled(adx - params.adx_min, params.adx_full - params.adx_min)


@dataclass(frozen=True)
class Rule:
    """One strategy as data: its decision over Bars and the indicator columns it reads."""

    decide: Callable[[Bars, Any], Decision]
    needs: tuple[str, ...]


_RULES: dict[str, Rule] = {
    "ema_channel_breakout": Rule(_breakout, _BREAKOUT_NEEDS),
    "rsi_mean_reversion": Rule(_rsi_reversion, _RSI_NEEDS),
    "macd_cross_adx": Rule(_macd_adx, _MACD_NEEDS),
}
# Every indicator column some strategy reads: what a batch needs to load.
NEEDED_COLUMNS = tuple(dict.fromkeys(col for rule in _RULES.values() for col in rule.needs))


@dataclass(frozen=True)
class Found:
    """Signals found on Bars, ordered by bar then strategy: each one's bar position and its row's fields."""

    position: np.ndarray
    strategy: list[str]
    side: list[str]
    strength: np.ndarray
    price: np.ndarray
    inputs: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.position)


def _inputs(bars: Bars, where: np.ndarray, needs: Sequence[str], settings: dict) -> list[dict[str, Any]]:
    """Everything that decided each fired bar: both bars of every crossing, plus the parameters."""
    # tolist() yields plain Python floats and strings, so the dicts are JSON-serialisable as they are.
    before = where - 1
    values = [("close", bars.close[where].tolist(), bars.close[before].tolist()),
              *((col, bars.columns[col][where].tolist(), bars.columns[col][before].tolist()) for col in needs)]
    rows = []
    for k in range(len(where)):
        row: dict[str, Any] = {}
        for col, now, then in values:
            row[col], row[f"prev_{col}"] = now[k], then[k]
        row["params"] = dict(settings)
        rows.append(row)
    return rows


def _fire(name: str, bars: Bars, params: Any, eligible: np.ndarray | None) -> Found:
    """Where strategy `name` fired on an eligible bar with every indicator it needs known."""
    rule = _RULES[name]
    buy, sell, strength = rule.decide(bars, params)
    fired = (buy | sell) & bars.known(rule.needs)
    where = np.flatnonzero(fired if eligible is None else fired & eligible)
    return Found(where, [name] * len(where), np.where(buy[where], "buy", "sell").tolist(),
                 np.asarray(strength, dtype="float64")[where], bars.close[where],
                 _inputs(bars, where, rule.needs, asdict(params)))


def _chosen(names: Iterable[str] | None) -> list[str]:
    chosen = list(STRATEGIES) if names is None else list(names)
    unknown = [name for name in chosen if name not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies: {', '.join(unknown)}")
    return chosen


def find_signals(bars: Bars, eligible: np.ndarray | None = None, names: Iterable[str] | None = None,
                 params: Mapping[str, Any] | None = None) -> Found:
    """Run the named strategies (all by default) over every series in `bars` in one pass, on eligible bars only.

    `params` maps a strategy name to its params object, overriding the registry default.
    """
    chosen = _chosen(names)
    found = [_fire(name, bars, (params or {}).get(name, STRATEGIES[name][1]), eligible) for name in chosen]
    position = np.concatenate([np.zeros(0, dtype=np.intp), *(f.position for f in found)])
    rank = {name: k for k, name in enumerate(sorted(set(chosen)))}
    strategy = [name for f in found for name in f.strategy]
    # By bar, then by strategy name; lexsort is stable, so a strategy named twice keeps the order asked.
    order = np.lexsort((np.array([rank[name] for name in strategy], dtype=np.intp), position))
    pick = order.tolist()
    side = [side for f in found for side in f.side]
    inputs = [row for f in found for row in f.inputs]
    return Found(position[order], [strategy[k] for k in pick], [side[k] for k in pick],
                 np.concatenate([np.zeros(0), *(f.strength for f in found)])[order],
                 np.concatenate([np.zeros(0), *(f.price for f in found)])[order], [inputs[k] for k in pick])


def _require(candles: pd.DataFrame, indicators: pd.DataFrame, needs: Sequence[str]) -> None:
    missing = [col for col in needs if col not in indicators.columns]
    if missing or "close" not in candles.columns:
        raise ValueError(f"missing columns: {', '.join(missing or ['close'])}")
    if not candles.index.equals(indicators.index):
        raise ValueError("candles and indicators must share the same index")


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


def _table(index: pd.Index, found: Found) -> pd.DataFrame:
    """Found signals as a frame of SIGNAL_COLUMNS, ts from the series' index."""
    if not len(found):
        return _empty(index)
    return pd.DataFrame({"ts": index[found.position], "strategy": found.strategy, "side": found.side,
                         "strength": found.strength, "price": found.price, "inputs": found.inputs})


def _one_strategy(name: str, candles: pd.DataFrame, indicators: pd.DataFrame, params: Any) -> pd.DataFrame:
    _require(candles, indicators, _RULES[name].needs)
    return _table(candles.index, _fire(name, Bars.of_series(candles, indicators), params, None))


def ema_channel_breakout(
    candles: pd.DataFrame, indicators: pd.DataFrame, params: EmaChannelBreakoutParams = EmaChannelBreakoutParams()
) -> pd.DataFrame:
    """Buy a close crossing above channel_high in an uptrend; sell one crossing below channel_low in a downtrend."""
    return _one_strategy("ema_channel_breakout", candles, indicators, params)


def rsi_mean_reversion(
    candles: pd.DataFrame, indicators: pd.DataFrame, params: RsiMeanReversionParams = RsiMeanReversionParams()
) -> pd.DataFrame:
    """In a ranging market, buy RSI crossing up through oversold; sell it crossing down through overbought."""
    return _one_strategy("rsi_mean_reversion", candles, indicators, params)


def macd_cross_adx(
    candles: pd.DataFrame, indicators: pd.DataFrame, params: MacdCrossAdxParams = MacdCrossAdxParams()
) -> pd.DataFrame:
    """Buy MACD crossing above its signal line, sell crossing below, only while ADX >= adx_min."""
    return _one_strategy("macd_cross_adx", candles, indicators, params)


Strategy = Callable[[pd.DataFrame, pd.DataFrame, Any], pd.DataFrame]

STRATEGIES: dict[str, tuple[Strategy, Any]] = {
    "ema_channel_breakout": (ema_channel_breakout, EmaChannelBreakoutParams()),
    "rsi_mean_reversion": (rsi_mean_reversion, RsiMeanReversionParams()),
    "macd_cross_adx": (macd_cross_adx, MacdCrossAdxParams()),
}


def _closed_bars(index: pd.Index, closed_mask: pd.Series | None) -> np.ndarray | None:
    if closed_mask is None:
        return None
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
    chosen = _chosen(names)
    closed = _closed_bars(candles.index, closed_mask)
    for name in chosen:
        _require(candles, indicators, _RULES[name].needs)
    found = find_signals(Bars.of_series(candles, indicators), closed, chosen, params)
    return _table(candles.index, found)
