"""Run scopes through the real processes: symbol lists, and a relative range (days=) that ends as the run starts.

The simulator's clock is frozen at the wall clock of the module's start, so "the last 2 days" means
the same bars to the dispatcher (which reads the wall clock) and to the exchange.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.utils.stack import LocalStack, http

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]


@pytest.fixture(scope="module")
def stack(fresh_servers):
    now = datetime.now(UTC).replace(microsecond=0)
    with LocalStack(*fresh_servers, SYMBOLS, now.isoformat().replace("+00:00", "Z"),
                    extra_env={"SYNC_LOOKBACK_BARS": "5"}) as running:
        yield running


def _first_candles(database_url: str) -> dict[str, tuple[datetime, int]]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT i.symbol, min(c.ts), count(*) FROM candles c
                                      JOIN instruments i ON i.id = c.instrument_id GROUP BY i.symbol""")).all()
    engine.dispose()
    return {symbol: (first, count) for symbol, first, count in rows}


def test_a_backfill_of_the_last_two_days_of_a_symbol_list_fetches_those_bars_and_only_those_symbols(
        stack, database_url):
    status, body = stack.trigger("backfill", symbol="SOL/USD,BTC/USD", days="2")
    assert status == 202 and body["scope"] == {"symbol": "BTC/USD,SOL/USD", "days": 2}, body
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS", run
    assert sorted(entry["instrument"] for entry in run["result"]) == ["BTC/USD 1h", "SOL/USD 1h"]
    started = datetime.fromisoformat(run["started_at"])
    # 48 closed bars before the open one, and the open one; the start aligned down to the hour.
    since = (started - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    stored = _first_candles(database_url)
    assert set(stored) == {"BTC/USD", "SOL/USD"}
    for symbol in ("BTC/USD", "SOL/USD"):
        first, count = stored[symbol]
        assert first in (since, since + timedelta(hours=1)), (symbol, first, since)  # the run may straddle an hour
        assert count in (48, 49), (symbol, count)
    assert {entry["candles"] for entry in run["result"]} <= {48, 49}


def test_an_indicator_run_over_the_last_bars_recomputes_them(stack):
    _, synced = stack.trigger("ohlc", symbol="BTC/USD")
    assert stack.wait_for_run(synced["task_id"])["status"] == "SUCCESS"
    _, first = stack.trigger("indicators", symbol="BTC/USD")
    assert stack.wait_for_run(first["task_id"])["status"] == "SUCCESS"
    _, again = stack.trigger("indicators", symbol="BTC/USD", bars="10")
    run = stack.wait_for_run(again["task_id"])
    assert run["status"] == "SUCCESS", run
    (entry,) = run["result"]
    # The 10 closed bars and the open one are recomputed (from warm-up history: a range means "from here").
    # (10 when the wall clock passed an hour since the simulator's clock froze.)
    assert (entry["instrument"], entry["path"]) == ("BTC/USD 1h", "warmup") and entry["bars"] in (10, 11), entry


def test_ranges_a_kind_does_not_use_are_refused_over_http(stack):
    for params, parameter in (({"days": "2"}, "days"), ({"since": "2024-01-01"}, "since")):
        status, body = stack.trigger("ohlc", symbol="BTC/USD", **params)
        assert (status, body["parameter"]) == (400, parameter), body


def _stock_candles(database_url: str, symbol: str, bars: int) -> None:
    """A stock instrument on XNYS with `bars` closed daily bars, as an import would leave it (a random walk)."""
    import math

    from services.core.store.instruments import insert_instrument

    engine = create_engine(database_url)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(bars):
        close = 100 + 10 * math.sin(n / 7) + n * 0.05
        rows.append({"ts": start + timedelta(days=n), "o": close - 0.5, "h": close + 1, "l": close - 1, "c": close})
    with engine.begin() as conn:
        instrument = insert_instrument(conn, "XNYS", symbol, ["1d"], "cli")
        conn.execute(text("""INSERT INTO candles
                                 (instrument_id, timeframe, ts, open, high, low, close, volume, is_closed)
                             VALUES (:i, '1d', :ts, :o, :h, :l, :c, 1000, true)"""),
                     [{**row, "i": instrument["id"]} for row in rows])
    engine.dispose()


def test_a_run_on_a_stock_venue_computes_its_indicators_and_signals_and_says_why_nothing_was_fetched(
        stack, database_url):
    _stock_candles(database_url, "MSFT", 300)
    status, body = stack.trigger("all", exchange="XNYS", symbol="MSFT")
    assert status == 202 and body["scope"] == {"exchange": "XNYS", "symbol": "MSFT"}, body
    run = stack.wait_for_run(body["task_id"])
    assert run["status"] == "SUCCESS", run
    stages = {entry["stage"]: entry for entry in run["result"]}
    assert stages["ohlc"]["status"] == "skipped" and "XNYS is a stock venue" in stages["ohlc"]["reason"]
    assert stages["indicators"]["status"] == "ok" and stages["signals"]["status"] == "ok"
    engine = create_engine(database_url)
    with engine.connect() as conn:
        computed = conn.execute(text("""SELECT count(*) FROM indicator_values v JOIN instruments i
                                         ON i.id = v.instrument_id WHERE i.exchange = 'XNYS'""")).scalar_one()
        kraken_ids = conn.execute(text("SELECT count(*) FROM instruments WHERE symbol = 'MSFT'")).scalar_one()
    engine.dispose()
    assert computed == 300 and kraken_ids == 1
    status, listed = http("GET", f"{stack.api}/api/runs?exchange=XNYS")
    assert status == 200 and [run["task_id"] for run in listed["runs"]] == [body["task_id"]], listed
    status, listed = http("GET", f"{stack.api}/api/runs?exchange=binance")  # the stack's EXCHANGE
    assert status == 200 and listed["count"] > 0
    assert body["task_id"] not in [run["task_id"] for run in listed["runs"]]


def test_a_fetch_run_on_a_stock_venue_and_an_unknown_ticker_are_refused_naming_the_parameter(stack):
    status, body = stack.trigger("ohlc", exchange="XNYS")
    assert status == 400 and body["parameter"] == "exchange" and "fed by imports" in body["message"]
    status, body = stack.trigger("all", exchange="XNYS", symbol="AAPL", add="true")
    assert status == 400 and body["parameter"] == "symbol" and "candleflow import" in body["message"]
    status, body = stack.trigger("all", exchange="XNYS", symbol="BTC/USD")
    assert status == 400 and body["parameter"] == "symbol" and "a ticker" in body["message"]
