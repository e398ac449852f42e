"""Indicator, pattern, level and signal stages against real Postgres, after a real ingest backfill."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from services.core.store.marketdata import load_candles
from services.core.timeparse import parse_instant_ms
from services.exchange_sim.server import running_simulator
from services.indicators.analysis import (
    refresh_indicators,
    refresh_levels,
    refresh_patterns,
    refresh_regime,
)
from services.indicators.batch import refresh_indicator_batch
from services.indicators.engine import INDICATOR_COLUMNS, IndicatorParams, compute_indicators
from services.ingest.fetching import backfill, sync_instrument
from services.signals.generation import refresh_signals
from tests.utils.ingest import sim_context, table_rows

pytestmark = pytest.mark.integration

H = 3_600_000
SINCE = parse_instant_ms("2023-10-01")
NOW = "2024-03-01T00:30:00Z"
PARAMS = IndicatorParams()
SNAPSHOT = {
    "indicator_values": "SELECT * FROM indicator_values ORDER BY ts",
    "patterns": "SELECT * FROM patterns ORDER BY ts, pattern",
    "levels": "SELECT * FROM levels ORDER BY kind, price",
    "signals": "SELECT * FROM signals ORDER BY ts, strategy",
    "stage_watermarks": "SELECT * FROM stage_watermarks ORDER BY stage",
}


@pytest.fixture()
def sim():
    with running_simulator(symbols=["BTC/USD"], now=NOW, seed=11) as (url, simulator):
        yield url, simulator


@pytest.fixture()
def instrument(sim, engine, redis_url):
    backfill(sim_context(sim[0], engine, redis_url), "BTC/USD", "1h", SINCE)
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM instruments")).scalar_one()


def _run_all_stages(engine, instrument_id):
    with engine.begin() as conn:
        return {
            "indicators": refresh_indicators(conn, instrument_id, "1h", PARAMS),
            "regime": refresh_regime(conn, instrument_id, "1h", PARAMS),
            "patterns": refresh_patterns(conn, instrument_id, "1h"),
            "levels": refresh_levels(conn, instrument_id, "1h", lookback_bars=500),
            "signals": refresh_signals(conn, instrument_id, "1h"),
        }


def _snapshot(engine):
    return {name: table_rows(engine, sql) for name, sql in SNAPSHOT.items()}


def test_after_a_backfill_the_stages_fill_their_tables_and_a_rerun_changes_nothing(engine, instrument):
    first = _run_all_stages(engine, instrument)
    bars = len(table_rows(engine, "SELECT 1 FROM candles"))
    assert first["indicators"]["rows_written"] == bars
    assert first["patterns"]["rows_written"] > 0 and first["levels"]["rows_written"] > 0
    assert first["signals"]["signals_created"] > 0
    counts = {name: len(rows) for name, rows in _snapshot(engine).items()}
    assert counts["signals"] == first["signals"]["signals_created"]
    assert {"support", "resistance"} == {row[2] for row in table_rows(engine, "SELECT * FROM levels")}
    before = _snapshot(engine)
    second = _run_all_stages(engine, instrument)
    assert second["indicators"]["rows_written"] == 0 and second["signals"]["signals_created"] == 0
    assert _snapshot(engine) == before


def test_signals_are_only_on_closed_candles_and_keep_their_reproducible_inputs(engine, instrument):
    _run_all_stages(engine, instrument)
    open_ts = table_rows(engine, "SELECT ts FROM candles WHERE NOT is_closed")
    assert len(open_ts) == 1
    assert not table_rows(engine, "SELECT 1 FROM signals WHERE ts = :ts", ts=open_ts[0][0])
    for strategy, price, inputs in table_rows(engine, "SELECT strategy, price, inputs FROM signals"):
        assert inputs["close"] == price and "params" in inputs, strategy


def test_hourly_updates_recompute_only_new_bars_and_equal_a_full_recomputation(sim, engine, redis_url,
                                                                               instrument):
    _run_all_stages(engine, instrument)
    sim[1].advance(5 * 3600)
    ctx = sim_context(sim[0], engine, redis_url)
    sync_instrument(ctx, "BTC/USD", "1h")
    with engine.begin() as conn:
        update = refresh_indicators(conn, instrument, "1h", PARAMS)
    assert update["bars"] == 6  # the bar that was open, four closed since, the new open one
    _assert_stored_indicators_equal_a_full_recomputation(engine, instrument)


def test_hourly_batch_updates_carry_the_stored_state_and_equal_a_full_recomputation(sim, engine, redis_url,
                                                                                    instrument):
    first = refresh_indicator_batch(engine, "binance", ["BTC/USD"], "1h", PARAMS)["BTC/USD"]
    assert (first["path"], first["reason"]) == ("warmup", "no state")
    for _ in range(3):
        sim[1].advance(2 * 3600)
        sync_instrument(sim_context(sim[0], engine, redis_url), "BTC/USD", "1h")
        update = refresh_indicator_batch(engine, "binance", ["BTC/USD"], "1h", PARAMS)["BTC/USD"]
        assert update["path"] == "state" and update["bars"] == 3  # the bar that was open, one closed, a new open
    _assert_stored_indicators_equal_a_full_recomputation(engine, instrument)


def _assert_stored_indicators_equal_a_full_recomputation(engine, instrument: int) -> None:
    with engine.connect() as conn:
        candles = load_candles(conn, instrument, "1h")
    full = compute_indicators(candles[["open", "high", "low", "close", "volume"]], PARAMS)
    stored = table_rows(engine, f"SELECT {', '.join(INDICATOR_COLUMNS)} FROM indicator_values ORDER BY ts")
    stored = np.array(stored, dtype=float)
    expected = full[list(INDICATOR_COLUMNS)].to_numpy()
    scale = candles["close"].abs().max()
    both = ~np.isnan(expected) & ~np.isnan(stored)
    assert both.sum() > 0.9 * expected.size
    assert (np.isnan(expected) == np.isnan(stored)).all()
    assert np.nanmax(np.abs(stored[both] - expected[both])) <= 1e-9 * scale


def test_candles_backfilled_behind_the_watermarks_are_analysed_on_the_next_run(sim, engine, redis_url, instrument):
    _run_all_stages(engine, instrument)
    before = len(table_rows(engine, "SELECT 1 FROM indicator_values"))
    earlier = SINCE - 30 * 24 * H
    backfill(sim_context(sim[0], engine, redis_url), "BTC/USD", "1h", earlier, SINCE)
    marks = dict(table_rows(engine, "SELECT stage, last_ts FROM stage_watermarks"))
    assert all(mark.timestamp() * 1000 < earlier for mark in marks.values()), marks
    again = _run_all_stages(engine, instrument)
    assert len(table_rows(engine, "SELECT 1 FROM indicator_values")) == before + 30 * 24
    assert again["indicators"]["bars"] == before + 30 * 24  # everything after the new bars, once


def test_signals_for_a_batch_are_written_once_and_a_redelivered_batch_adds_none(engine, instrument):
    from services.signals.generation import refresh_signal_batch

    with engine.begin() as conn:
        refresh_indicators(conn, instrument, "1h", PARAMS)
    with engine.begin() as conn:
        outcomes = refresh_signal_batch(conn, {"BTC/USD": instrument}, "1h")
    with engine.begin() as conn:
        again = refresh_signal_batch(conn, {"BTC/USD": instrument}, "1h")
    stored = table_rows(engine, "SELECT count(*) FROM signals")[0][0]
    assert outcomes["BTC/USD"]["signals_created"] == outcomes["BTC/USD"]["signals_found"] == stored > 0
    assert again["BTC/USD"] == {"bars": 0, "signals_found": 0, "signals_created": 0}
    first_ts = table_rows(engine, "SELECT min(ts) FROM candles")[0][0]
    with engine.begin() as conn:  # from `since`: every signal found again, none created
        rerun = refresh_signal_batch(conn, {"BTC/USD": instrument}, "1h", since=first_ts)
    assert rerun["BTC/USD"]["signals_found"] == stored and rerun["BTC/USD"]["signals_created"] == 0


def test_patterns_for_a_batch_equal_the_one_instrument_path_and_a_rerun_finds_nothing_new(engine, instrument):
    from services.indicators.analysis import refresh_pattern_batch

    with engine.begin() as conn:
        outcomes = refresh_pattern_batch(conn, {"BTC/USD": instrument}, "1h")
    patterns = "SELECT instrument_id, timeframe, ts, pattern, direction, strength FROM patterns ORDER BY ts, pattern"
    batch_rows = table_rows(engine, patterns)
    assert outcomes["BTC/USD"]["patterns"] == len(batch_rows) > 0
    with engine.begin() as conn:
        again = refresh_pattern_batch(conn, {"BTC/USD": instrument}, "1h")
    assert again["BTC/USD"] == {"bars": 0, "patterns": 0}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM patterns"))
        conn.execute(text("DELETE FROM stage_watermarks WHERE stage = 'patterns'"))
        refresh_patterns(conn, instrument, "1h")
    assert table_rows(engine, patterns) == batch_rows
