"""Strategies over many series laid end to end: each series gives what it gives alone, and none sees its neighbour."""

import numpy as np
import pandas as pd
import pytest

from services.signals.bars import Bars
from services.signals.rules import find_signals, generate_signals
from tests.utils.candles import closes, indicators

UP, DOWN, RANGING = "trending_up", "trending_down", "ranging"


def series(prices, regime, rsi, macd, adx, start="2024-01-01T00:00:00Z"):
    candles = closes(prices, start=start)
    n = len(prices)
    return candles, indicators(candles.index, regime=regime, channel_high=[102] * n, channel_low=[95] * n,
                               rsi=rsi, macd=macd, macd_signal=[0] * n, adx=adx)


# Every strategy fires somewhere; the third series starts where a crossing would be if it saw the second's last bar.
SERIES = [
    series([100, 101, 104, 104, 104], [UP, UP, UP, RANGING, RANGING], [50, 50, 50, 25, 35], [-1, -1, 1, 1, 1],
           [30] * 5),
    series([100, 96, 93, 93], [DOWN] * 4, [75, 72, 68, 60], [1, 1, -1, -1], [45, 45, 45, 45]),
    series([104, 104, 90], [UP, DOWN, DOWN], [np.nan, 35, 35], [1, 1, -1], [np.nan, 25, 25]),
    series([100], [RANGING], [20], [0], [30]),
]


def laid_end_to_end(parts):
    frames = [pd.concat([candles["close"], ind], axis=1).reset_index(drop=True) for candles, ind in parts]
    joined = pd.concat(frames, ignore_index=True)
    starts = np.zeros(len(joined), dtype=bool)
    starts[np.cumsum([0] + [len(f) for f in frames[:-1]])] = True
    return Bars(joined["close"], {col: joined[col].to_numpy() for col in joined if col != "close"}, starts)


def test_many_series_at_once_give_each_series_signals_alone_in_the_same_order():
    found = find_signals(laid_end_to_end(SERIES))
    offsets = np.cumsum([0] + [len(candles) for candles, _ in SERIES])
    together = [(int(np.searchsorted(offsets, p, side="right")) - 1, strategy, side, strength, price, inputs)
                for p, strategy, side, strength, price, inputs in zip(
                    found.position.tolist(), found.strategy, found.side, found.strength.tolist(),
                    found.price.tolist(), found.inputs, strict=True)]
    alone = [(k, row.strategy, row.side, row.strength, row.price, row.inputs)
             for k, (candles, ind) in enumerate(SERIES) for row in generate_signals(candles, ind).itertuples()]
    assert len(alone) >= 5 and {row[1] for row in alone} == {"ema_channel_breakout", "rsi_mean_reversion",
                                                               "macd_cross_adx"}
    assert together == alone


def test_a_series_first_bar_never_crosses_against_the_previous_series_last_bar():
    # Alone: the second series' first bar has no previous bar. After the first series it
    # would be a close crossing above the channel in an uptrend, and MACD crossing its signal line.
    first = series([100, 100], [UP, UP], [50, 50], [-1, -1], [30, 30])
    second = series([104, 104], [UP, UP], [50, 50], [1, 1], [30, 30], start="2024-02-01T00:00:00Z")
    assert len(find_signals(laid_end_to_end([first, second]))) == 0
    joined = pd.concat([first[0], second[0]]), pd.concat([first[1], second[1]])
    assert len(generate_signals(*joined)) == 2  # the same bars as one series do cross


@pytest.mark.parametrize("eligible", [[True] * 13, [False] * 5 + [True] * 8, [False] * 13])
def test_only_eligible_bars_signal(eligible):
    bars = laid_end_to_end(SERIES)
    everything = find_signals(bars)
    some = find_signals(bars, np.array(eligible))
    assert some.position.tolist() == [p for p in everything.position.tolist() if eligible[p]]
