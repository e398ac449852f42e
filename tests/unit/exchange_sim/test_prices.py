"""Price paths: deterministic, consistent OHLC, sensible levels, open candles that close."""

from __future__ import annotations

import numpy as np
import pytest

from services.exchange_sim import timeframes
from services.exchange_sim.clock import parse_time_ms
from services.exchange_sim.markets import make_market
from services.exchange_sim.prices import PricePath

LISTED = parse_time_ms("2022-01-01T00:00:00Z")
NOW = parse_time_ms("2024-03-01T00:00:00Z")


def path(symbol="BTC/USD", interval="1h", seed=7):
    return PricePath(seed, make_market(symbol), interval, LISTED)


def columns(candles):
    return np.vstack([candles.open, candles.high, candles.low, candles.close, candles.volume])


@pytest.mark.parametrize("interval", timeframes.INTERVALS)
def test_every_interval_gives_consistent_positive_candles(interval):
    p = path(interval=interval)
    last = timeframes.bar_index_at(interval, NOW)
    first = max(p.first_index, last - 299)
    c = p.candles(first, last - first + 1, NOW)
    assert (c.low > 0).all()
    assert (c.volume[:-1] > 0).all() and c.volume[-1] >= 0  # the open bar may be just born
    assert (c.low <= np.minimum(c.open, c.close)).all()
    assert (c.high >= np.maximum(c.open, c.close)).all()
    assert (np.diff(c.open_ms) > 0).all()
    assert c.open_ms[0] == timeframes.bar_open_ms(interval, first)


def test_a_bar_is_the_same_whichever_page_asks_for_it():
    p = path()
    page = p.candles(p.first_index + 5000, 1000)
    overlapping = p.candles(p.first_index + 5600, 1000)
    fresh = path().candles(p.first_index + 5600, 400)
    assert np.array_equal(columns(page)[:, 600:], columns(overlapping)[:, :400])
    assert np.array_equal(columns(overlapping)[:, :400], columns(fresh))


def test_consecutive_bars_open_where_the_previous_one_closed():
    c = path().candles(path().first_index + 123, 500)
    assert np.allclose(c.open[1:], c.close[:-1], rtol=1e-12)


def test_seed_and_symbol_each_change_the_path():
    base = path().candles(path().first_index + 100, 50).close
    assert not np.allclose(base, path(seed=8).candles(path().first_index + 100, 50).close)
    assert not np.allclose(base, path("BTC/USDT").candles(path().first_index + 100, 50).close)


@pytest.mark.parametrize("symbol, level", [("BTC/USD", 30_000), ("ETH/USD", 2_000), ("SOL/USDT", 100)])
def test_a_market_starts_at_its_usual_level_and_stays_near_it(symbol, level):
    p = path(symbol, "1d")
    c = p.candles(p.first_index, 790)
    assert c.open[0] == pytest.approx(level)
    assert level / 5 < c.close.min() and c.close.max() < level * 5


def test_returns_cluster_in_volatility():
    c = path(interval="1h").candles(path().first_index, 4000)
    moves = np.abs(np.diff(np.log(c.close)))
    assert np.corrcoef(moves[1:], moves[:-1])[0, 1] > 0.1


def test_no_bar_exists_before_the_listing():
    p = path(interval="1d")
    assert timeframes.bar_open_ms("1d", p.first_index) == LISTED


def test_the_open_candle_grows_as_time_passes_and_ends_as_the_closed_bar():
    p = path()
    index = timeframes.bar_index_at("1h", NOW)
    opened = timeframes.bar_open_ms("1h", index)
    final = p.candles(index, 1)
    seen = [p.candles(index, 1, opened + minutes * 60_000) for minutes in (0, 10, 30, 59)]
    assert seen[0].close[0] == final.open[0] == seen[0].high[0] == seen[0].low[0]
    highs, lows = [s.high[0] for s in seen], [s.low[0] for s in seen]
    volumes = [s.volume[0] for s in seen]
    assert highs == sorted(highs) and lows == sorted(lows, reverse=True)
    assert volumes == sorted(volumes)
    assert highs[-1] <= final.high[0] and lows[-1] >= final.low[0]
    assert columns(p.candles(index, 1, opened + 3_600_000)).tolist() == columns(final).tolist()
