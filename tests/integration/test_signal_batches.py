"""The signals stage on a batch against real Postgres: it finds and stores what each instrument finds alone."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.core.store.instruments import UnknownInstrument
from services.core.timeparse import parse_instant_ms
from services.exchange_sim.server import running_simulator
from services.indicators.batch import refresh_indicator_batch
from services.indicators.engine import IndicatorParams
from services.ingest.fetching import backfill, sync_batch
from services.signals.generation import refresh_signal_batch, refresh_signals
from tests.utils.ingest import sim_context, table_rows

pytestmark = pytest.mark.integration

SINCE = parse_instant_ms("2024-01-01")
NOW = "2024-03-01T00:30:00Z"
COMPUTED = ["BTC/USD", "ETH/USD", "SOL/USD"]
UNCOMPUTED = "ADA/USD"  # candles but no indicators yet: nothing is ready for signals
SIGNALS = """SELECT i.symbol, s.ts, s.strategy, s.side, s.strength, s.price, s.inputs
               FROM signals s JOIN instruments i ON i.id = s.instrument_id ORDER BY i.symbol, s.ts, s.strategy"""
MARKS = """SELECT i.symbol, w.last_ts FROM stage_watermarks w JOIN instruments i ON i.id = w.instrument_id
            WHERE w.stage = 'signals' ORDER BY i.symbol"""


@pytest.fixture()
def sim():
    with running_simulator(symbols=[*COMPUTED, UNCOMPUTED], now=NOW, seed=5) as (url, simulator):
        yield url, simulator


@pytest.fixture()
def instruments(sim, engine, redis_url):
    """Two months of hourly candles for every symbol; indicators for all but UNCOMPUTED."""
    ctx = sim_context(sim[0], engine, redis_url)
    for symbol in [*COMPUTED, UNCOMPUTED]:
        backfill(ctx, symbol, "1h", SINCE)
    refresh_indicator_batch(engine, "binance", COMPUTED, "1h", IndicatorParams())
    return dict(table_rows(engine, "SELECT symbol, id FROM instruments"))


def _both_paths(engine, instruments, since=None):
    """(each instrument alone, the batch): outcomes, stored signals and watermarks, each rolled back."""
    results = []
    for work in (lambda conn: {s: refresh_signals(conn, i, "1h", since=since) for s, i in instruments.items()},
                 lambda conn: refresh_signal_batch(conn, instruments, "1h", since=since)):
        with engine.connect() as conn, conn.begin() as transaction:
            outcomes = work(conn)
            results.append(({s: (o["bars"], o["signals_created"]) for s, o in outcomes.items()},
                            conn.execute(text(SIGNALS)).all(), conn.execute(text(MARKS)).all()))
            transaction.rollback()
    return results


def test_a_batch_finds_and_stores_what_each_instrument_does_alone_from_history_watermark_and_since(
        sim, engine, redis_url, instruments):
    alone, batch = _both_paths(engine, instruments)
    assert batch == alone
    outcomes, signals, marks = batch
    assert {symbol for symbol, *_ in signals} == set(COMPUTED) and outcomes[UNCOMPUTED] == (0, 0)
    assert [symbol for symbol, _ in marks] == sorted(COMPUTED)
    with engine.begin() as conn:
        refresh_signal_batch(conn, instruments, "1h")
    sim[1].advance(40 * 3600)  # enough new bars that some of them signal
    sync_batch(sim_context(sim[0], engine, redis_url), [*COMPUTED, UNCOMPUTED], "1h")
    refresh_indicator_batch(engine, "binance", COMPUTED, "1h", IndicatorParams())
    alone, batch = _both_paths(engine, instruments)  # from each watermark
    assert batch == alone and {bars for bars, _ in batch[0].values()} == {0, 40}
    assert sum(created for _, created in batch[0].values()) > 0
    since = table_rows(engine, "SELECT min(ts) FROM signals")[0][0]
    alone, batch = _both_paths(engine, instruments, since=since)  # a rerun from `since` finds, creates nothing new
    assert batch == alone and sum(created for _, created in batch[0].values()) > 0


def test_a_batch_names_an_unknown_symbol_and_signals_its_neighbours_as_each_alone(monkeypatch, server_settings,
                                                                                  engine, instruments):
    from services.core import config
    from services.signals.tasks import generate_signals, signals_batch

    monkeypatch.setenv("EXCHANGE", "binance")  # where the simulator's candles were stored
    config.get_settings.cache_clear()
    alone = {}
    for symbol in [*COMPUTED, "NOPE/USD"]:
        try:
            alone[symbol] = generate_signals(symbol, "1h")["signals_created"]
        except UnknownInstrument as exc:
            alone[symbol] = type(exc)
    stored = table_rows(engine, SIGNALS), table_rows(engine, MARKS)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM signals"))
        conn.execute(text("DELETE FROM stage_watermarks WHERE stage = 'signals'"))
    batch = signals_batch([*COMPUTED, "NOPE/USD"], "1h", "binance")
    assert alone["NOPE/USD"] is UnknownInstrument and isinstance(batch["NOPE/USD"], UnknownInstrument)
    assert "NOPE/USD" in str(batch["NOPE/USD"])
    assert {s: batch[s]["signals_created"] for s in COMPUTED} == {s: alone[s] for s in COMPUTED}
    assert all(alone[s] > 0 for s in COMPUTED)
    assert (table_rows(engine, SIGNALS), table_rows(engine, MARKS)) == stored
