"""Bar alignment follows Binance: epoch multiples, Monday weeks, calendar months."""

from __future__ import annotations

from services.exchange_sim import timeframes
from services.exchange_sim.clock import parse_time_ms


def test_hourly_bars_open_on_the_hour():
    ts = parse_time_ms("2024-03-01T13:37:12Z")
    index = timeframes.bar_index_at("1h", ts)
    assert timeframes.bar_open_ms("1h", index) == parse_time_ms("2024-03-01T13:00:00Z")
    assert timeframes.bar_open_ms("4h", timeframes.bar_index_at("4h", ts)) == \
        parse_time_ms("2024-03-01T12:00:00Z")


def test_weekly_bars_open_on_monday():
    ts = parse_time_ms("2024-03-01T00:00:00Z")  # a Friday
    opened = timeframes.bar_open_ms("1w", timeframes.bar_index_at("1w", ts))
    assert opened == parse_time_ms("2024-02-26T00:00:00Z")


def test_monthly_bars_open_on_the_first_of_the_month():
    ts = parse_time_ms("2024-02-29T23:00:00Z")
    index = timeframes.bar_index_at("1M", ts)
    assert timeframes.bar_open_ms("1M", index) == parse_time_ms("2024-02-01T00:00:00Z")
    assert timeframes.bar_open_ms("1M", index + 1) == parse_time_ms("2024-03-01T00:00:00Z")


def test_the_first_bar_at_or_after_a_time_skips_a_bar_already_open():
    on_the_hour = parse_time_ms("2024-03-01T13:00:00Z")
    assert timeframes.first_bar_at_or_after("1h", on_the_hour) == \
        timeframes.bar_index_at("1h", on_the_hour)
    assert timeframes.first_bar_at_or_after("1h", on_the_hour + 1) == \
        timeframes.bar_index_at("1h", on_the_hour) + 1


def test_every_interval_ccxt_binance_knows_is_served():
    import ccxt

    assert set(ccxt.binance().timeframes.values()) == set(timeframes.INTERVALS)
