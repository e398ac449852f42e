"""Freshness in trading time: a stock instrument's age counts its venue's sessions only; a ccxt one stays wall-clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from services.core.sessions import venue_sessions
from services.exporter.health import ScrapeHealth
from services.exporter.pipeline import PipelineCollector, data_age
from tests.unit.exporter.fakes import FakeEngine

DAY = 86400
NEW_YORK = ZoneInfo("America/New_York")
# Friday 20 November 2026's daily bar, stamped by its session's date.
FRIDAY_BAR = datetime(2026, 11, 20, tzinfo=UTC).timestamp()


def new_york(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=NEW_YORK).timestamp()


def ages(rows: list[dict]) -> dict[tuple[str, str], float]:
    """candleflow_data_age_seconds by (exchange, timeframe), from freshness rows as Postgres returns them."""
    registry = CollectorRegistry()
    registry.register(PipelineCollector(FakeEngine({"max(c.ts)": rows}), ScrapeHealth()))
    return {(s.labels["exchange"], s.labels["timeframe"]): s.value for metric in registry.collect()
            for s in metric.samples if s.name == "candleflow_data_age_seconds"}


def row(instrument_id: int, exchange: str, symbol: str, timeframe: str, newest: float, now: float) -> dict:
    return {"instrument_id": instrument_id, "exchange": exchange, "symbol": symbol, "timeframe": timeframe,
            "newest_candle": newest, "newest_signal": None, "now": now}


@pytest.mark.parametrize(("now", "bars"), [
    ("2026-11-21 12:00", 0),      # Saturday: Friday's bar is the newest there can be
    ("2026-11-23 09:00", 0),      # Monday before the open
    ("2026-11-23 16:00", 1),      # Monday's session passed without its bar
    ("2026-11-26 12:00", 3),      # Thanksgiving adds nothing
])
def test_a_stock_bars_age_is_trading_time_and_a_bitcoin_bars_wall_clock(now, bars):
    at = new_york(now)
    found = ages([row(1, "XNYS", "MSFT", "1d", FRIDAY_BAR, at), row(2, "kraken", "BTC/USD", "1d", FRIDAY_BAR, at)])
    assert found[("XNYS", "1d")] == pytest.approx(bars * DAY)
    assert found[("kraken", "1d")] == at - FRIDAY_BAR - DAY


def test_an_hourly_stock_bar_ages_by_the_trading_seconds_since_its_close():
    last_hour = new_york("2026-11-20 15:30")  # cut short by the 16:00 close
    found = ages([row(1, "XNYS", "MSFT", "1h", last_hour, new_york("2026-11-23 10:15"))])
    assert found[("XNYS", "1h")] == 45 * 60


def test_an_exchange_neither_ccxt_nor_a_mic_keeps_the_wall_clock():
    assert data_age(None, FRIDAY_BAR, DAY, FRIDAY_BAR + 3 * DAY) == 2 * DAY
    assert ages([row(1, "renamed-exchange", "BTC/USD", "1d", FRIDAY_BAR, FRIDAY_BAR + 3 * DAY)]) == {
        ("renamed-exchange", "1d"): 2 * DAY}


def test_a_daily_xtai_bar_is_not_stale_through_the_lunar_new_year():
    xtai = venue_sessions("XTAI")
    eleventh = datetime(2026, 2, 11, tzinfo=UTC).timestamp()
    holiday = datetime(2026, 2, 18, 3, 0, tzinfo=UTC).timestamp()
    assert data_age(xtai, eleventh, DAY, holiday) == 0
    reopened = datetime(2026, 2, 23, 5, 30, tzinfo=UTC).timestamp()  # the 23rd's close, 13:30 in Taipei
    assert data_age(xtai, eleventh, DAY, reopened) == DAY
