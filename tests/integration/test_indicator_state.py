"""The indicators stage carries a stored recursion state forward, and falls back to a warm-up when it must."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.core.store.bulk import copy_upsert
from services.core.store.instruments import UnknownInstrument, ensure_instrument
from services.core.store.marketdata import load_candles
from services.core.store.watermarks import rewind_watermarks, write_watermark
from services.core.timeframe import Timeframe
from services.indicators import batch
from services.indicators.engine import INDICATOR_COLUMNS, IndicatorParams, compute_indicators
from services.indicators.state import IndicatorState, params_fingerprint
from services.indicators.state_store import read_series, write_states
from tests.utils.ingest import table_rows
from tests.utils.series import realistic_candles

pytestmark = pytest.mark.integration

EXCHANGE = "test-exchange"
PARAMS = IndicatorParams()
HISTORY = 3_500  # more than the 2,964-bar warm-up, so the fallback reads a true tail
PERCENT_COLUMNS = {"rsi", "adx", "plus_di", "minus_di"}
SNAPSHOT = {
    "indicator_values": "SELECT * FROM indicator_values ORDER BY instrument_id, ts",
    "indicator_state": "SELECT * FROM indicator_state ORDER BY instrument_id",
    "stage_watermarks": "SELECT * FROM stage_watermarks ORDER BY instrument_id, stage",
}


def _market(symbol: str, bars: int = HISTORY + 40) -> pd.DataFrame:
    """A symbol's whole (future) series: the tests store it a bar at a time."""
    seed = sum(map(ord, symbol))
    return realistic_candles(bars=bars, seed=seed, price=float(seed), start="2021-01-01")


def _store(engine, symbol: str, candles: pd.DataFrame, open_last: bool = True) -> int:
    """Store candles (the last one open unless told otherwise) the way ingest does; the instrument's id."""
    with engine.begin() as conn:
        instrument_id = ensure_instrument(conn, EXCHANGE, symbol, "1h")
        closed = np.ones(len(candles), dtype=bool)
        closed[-1] = not open_last
        rows = [(instrument_id, "1h", ts.to_pydatetime(), *prices, bool(is_closed))
                for ts, prices, is_closed in zip(candles.index, candles[["open", "high", "low", "close", "volume"]]
                                                 .to_numpy().tolist(), closed, strict=True)]
        copy_upsert(conn, "candles", ("instrument_id", "timeframe", "ts", "open", "high", "low", "close", "volume",
                                      "is_closed"), ("instrument_id", "timeframe", "ts"), rows,
                    update=("open", "high", "low", "close", "volume", "is_closed"))
    return instrument_id


def _run(engine, symbols, params=PARAMS, since=None) -> dict:
    return batch.refresh_indicator_batch(engine, EXCHANGE, symbols, "1h", params, since=since)


def _snapshot(engine) -> dict:
    return {name: table_rows(engine, sql) for name, sql in SNAPSHOT.items()}


def _assert_stored_equal_full_history(engine, instrument_id: int, params=PARAMS) -> None:
    """Every stored indicator row equals compute_indicators on the whole stored series within 1e-9."""
    with engine.connect() as conn:
        candles = load_candles(conn, instrument_id, "1h")
    expected = compute_indicators(candles, params)
    stored = table_rows(engine, f"SELECT ts, {', '.join(INDICATOR_COLUMNS)}, regime FROM indicator_values "
                                "WHERE instrument_id = :i ORDER BY ts", i=instrument_id)
    stamps = pd.DatetimeIndex([row[0] for row in stored]).tz_convert("UTC")
    expected = expected.loc[stamps]
    values = np.array([row[1:-1] for row in stored], dtype=float)
    for position, column in enumerate(INDICATOR_COLUMNS):
        scale = 100.0 if column in PERCENT_COLUMNS else float(candles["close"].abs().max())
        ours, theirs = values[:, position], expected[column].to_numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=column)
        assert np.nanmax(np.abs(ours - theirs), initial=0.0) <= 1e-9 * scale, column
    assert [row[-1] for row in stored] == expected["regime"].tolist()


@pytest.fixture()
def two_markets(engine):
    """Two instruments with a stored history, computed once (the first run stores their states)."""
    markets = {symbol: _market(symbol) for symbol in ("AAA/USD", "BBB/USD")}
    ids = {symbol: _store(engine, symbol, market.iloc[:HISTORY]) for symbol, market in markets.items()}
    _run(engine, list(markets))
    return markets, ids


def _next_bar(engine, markets, ids, bar: int) -> None:
    """The open bar closes (with its final prices) and bar `bar` opens, for every market."""
    for symbol, market in markets.items():
        _store(engine, symbol, market.iloc[bar - 1 : bar + 1])


def test_the_first_run_falls_back_for_want_of_a_state_and_stores_one_at_the_last_closed_bar(engine):
    market = _market("AAA/USD")
    instrument_id = _store(engine, "AAA/USD", market.iloc[:HISTORY])
    result = _run(engine, ["AAA/USD"])["AAA/USD"]
    assert result["path"] == "warmup" and result["reason"] == "no state"
    assert result["bars"] == result["rows_written"] == HISTORY
    last_closed = market.index[HISTORY - 2].to_pydatetime()
    assert table_rows(engine, "SELECT last_ts, params_fingerprint FROM indicator_state") == [
        (last_closed, params_fingerprint(PARAMS))]
    assert table_rows(engine, "SELECT last_ts FROM stage_watermarks WHERE stage = 'indicators'") == [(last_closed,)]
    _assert_stored_equal_full_history(engine, instrument_id)


def test_each_new_bar_is_carried_from_the_state_reading_one_row_besides_the_new_ones(engine, two_markets,
                                                                                    monkeypatch):
    markets, ids = two_markets
    read = []
    original = batch.load_candles_batch
    monkeypatch.setattr(batch, "load_candles_batch", lambda *a, **k: read.append(original(*a, **k)) or read[-1])
    _next_bar(engine, markets, ids, HISTORY)
    results = _run(engine, list(markets))
    assert all(result["path"] == "state" and "reason" not in result for result in results.values())
    # Per instrument: the state's own bar (to check it), the bar that closed, the new open bar.
    assert [len(frame) for frame in read] == [3 * len(markets)]
    assert all(result["bars"] == 2 and result["rows_written"] == 2 for result in results.values())


def test_values_carried_bar_by_bar_from_the_state_equal_a_full_history_recomputation(engine, two_markets):
    markets, ids = two_markets
    for bar in range(HISTORY, HISTORY + 30):
        _next_bar(engine, markets, ids, bar)
        assert {result["path"] for result in _run(engine, list(markets)).values()} == {"state"}
    for instrument_id in ids.values():
        _assert_stored_equal_full_history(engine, instrument_id)
    states = table_rows(engine, "SELECT last_ts FROM indicator_state ORDER BY instrument_id")
    assert states == [(markets["AAA/USD"].index[HISTORY + 28].to_pydatetime(),)] * 2


def test_several_closed_bars_at_once_are_carried_in_one_step(engine, two_markets):
    markets, ids = two_markets
    for symbol, market in markets.items():
        _store(engine, symbol, market.iloc[HISTORY - 1 : HISTORY + 12])
    results = _run(engine, list(markets))
    assert all(result["path"] == "state" and result["bars"] == 13 for result in results.values())
    for instrument_id in ids.values():
        _assert_stored_equal_full_history(engine, instrument_id)


def test_a_missing_state_falls_back_and_a_fresh_one_is_stored(engine, two_markets):
    markets, ids = two_markets
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM indicator_state WHERE instrument_id = :i"), {"i": ids["AAA/USD"]})
    _next_bar(engine, markets, ids, HISTORY)
    results = _run(engine, list(markets))
    assert results["AAA/USD"]["path"] == "warmup" and results["AAA/USD"]["reason"] == "no state"
    assert results["BBB/USD"]["path"] == "state"
    assert len(table_rows(engine, "SELECT 1 FROM indicator_state")) == 2
    _next_bar(engine, markets, ids, HISTORY + 1)
    assert {result["path"] for result in _run(engine, list(markets)).values()} == {"state"}
    _assert_stored_equal_full_history(engine, ids["AAA/USD"])


def test_changed_params_fall_back_and_store_a_state_under_the_new_fingerprint(engine, two_markets):
    markets, ids = two_markets
    other = IndicatorParams(rsi=9, ema_trend=100, bb_period=30, adx=20, channel=21)
    _next_bar(engine, markets, ids, HISTORY)
    results = _run(engine, list(markets), params=other)
    assert {(r["path"], r["reason"]) for r in results.values()} == {("warmup", "params changed")}
    assert {row[0] for row in table_rows(engine, "SELECT params_fingerprint FROM indicator_state")} == {
        params_fingerprint(other)}
    _next_bar(engine, markets, ids, HISTORY + 1)
    assert {result["path"] for result in _run(engine, list(markets), params=other).values()} == {"state"}


def test_a_watermark_moved_on_without_the_state_makes_it_stale(engine, two_markets):
    markets, ids = two_markets
    _next_bar(engine, markets, ids, HISTORY)
    with engine.begin() as conn:  # another writer of the stage's watermark, which kept no state
        write_watermark(conn, ids["AAA/USD"], "1h", "indicators", markets["AAA/USD"].index[HISTORY - 1])
    results = _run(engine, list(markets))
    assert (results["AAA/USD"]["path"], results["AAA/USD"]["reason"]) == ("warmup", "stale state")
    assert results["BBB/USD"]["path"] == "state"


def test_candles_backfilled_behind_the_state_fall_back_and_are_analysed(engine):
    market = _market("AAA/USD", bars=HISTORY + 200)
    instrument_id = _store(engine, "AAA/USD", market.iloc[200:])
    _run(engine, ["AAA/USD"])
    _store(engine, "AAA/USD", market.iloc[:200], open_last=False)
    with engine.begin() as conn:  # what ingest does when a backfill lands behind the watermarks
        rewind_watermarks(conn, instrument_id, Timeframe.parse("1h"), int(market.index[0].value // 1_000_000))
    result = _run(engine, ["AAA/USD"])["AAA/USD"]
    assert (result["path"], result["reason"]) == ("warmup", "older bars arrived")
    assert result["bars"] == HISTORY + 200
    _assert_stored_equal_full_history(engine, instrument_id)
    assert _run(engine, ["AAA/USD"])["AAA/USD"]["path"] == "state"


def test_a_state_the_stored_candles_contradict_falls_back(engine, two_markets):
    markets, ids = two_markets
    with engine.begin() as conn:  # the state's own bar repaired after the state was taken
        conn.execute(text("UPDATE candles SET close = close * 1.01 WHERE instrument_id = :i AND ts = "
                          "(SELECT last_ts FROM indicator_state WHERE instrument_id = :i)"), {"i": ids["AAA/USD"]})
    results = _run(engine, list(markets))
    assert (results["AAA/USD"]["path"], results["AAA/USD"]["reason"]) == (
        "warmup", "state does not match the stored candles")
    assert results["BBB/USD"]["path"] == "state"


def test_since_recomputes_from_that_bar_by_the_warmup_path(engine, two_markets):
    markets, _ = two_markets
    since = markets["AAA/USD"].index[HISTORY - 100].to_pydatetime()
    results = _run(engine, ["AAA/USD"], since=since)
    assert (results["AAA/USD"]["path"], results["AAA/USD"]["reason"], results["AAA/USD"]["bars"]) == (
        "warmup", "since given", 100)


def test_a_redelivered_batch_writes_nothing(engine, two_markets):
    markets, ids = two_markets
    _next_bar(engine, markets, ids, HISTORY)
    first = _run(engine, list(markets))
    before = _snapshot(engine)
    second = _run(engine, list(markets))
    assert all(result["rows_written"] > 0 for result in first.values())
    assert all(result["rows_written"] == 0 and result["bars"] == 1 for result in second.values())
    assert _snapshot(engine) == before


def test_a_redelivered_first_batch_writes_nothing_either(engine):
    _store(engine, "AAA/USD", _market("AAA/USD").iloc[:HISTORY])
    _run(engine, ["AAA/USD"])
    before = _snapshot(engine)
    assert _run(engine, ["AAA/USD"])["AAA/USD"]["rows_written"] == 0
    assert _snapshot(engine) == before


def test_an_unknown_symbol_is_named_while_the_others_are_computed(engine, two_markets):
    markets, ids = two_markets
    _next_bar(engine, markets, ids, HISTORY)
    results = _run(engine, ["AAA/USD", "NEVER/INGESTED", "BBB/USD"])
    assert list(results) == ["AAA/USD", "NEVER/INGESTED", "BBB/USD"]
    assert isinstance(results["NEVER/INGESTED"], UnknownInstrument) and "NEVER/INGESTED" in str(
        results["NEVER/INGESTED"])
    assert results["AAA/USD"]["rows_written"] == results["BBB/USD"]["rows_written"] == 2


def test_bad_candles_fail_only_their_instrument_on_either_path(engine, two_markets):
    markets, ids = two_markets
    _next_bar(engine, markets, ids, HISTORY)
    with engine.begin() as conn:
        conn.execute(text("UPDATE candles SET close = 'NaN' WHERE instrument_id = :i AND ts = :ts"),
                     {"i": ids["AAA/USD"], "ts": markets["AAA/USD"].index[HISTORY].to_pydatetime()})
        conn.execute(text("DELETE FROM indicator_state WHERE instrument_id = :i"), {"i": ids["BBB/USD"]})
    results = _run(engine, list(markets))
    assert isinstance(results["AAA/USD"], ValueError)
    assert results["BBB/USD"]["path"] == "warmup" and results["BBB/USD"]["rows_written"] == 2
    _run(engine, ["BBB/USD"])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM indicator_state"))
    assert isinstance(_run(engine, ["AAA/USD"])["AAA/USD"], ValueError)


def test_a_failed_transaction_gives_every_symbol_its_error_and_commits_nothing(engine, two_markets, monkeypatch):
    markets, ids = two_markets
    _next_bar(engine, markets, ids, HISTORY)
    before = _snapshot(engine)

    def unreachable(*args, **kwargs):
        raise OperationalError("INSERT INTO indicator_state …", {}, Exception("server closed the connection"))

    monkeypatch.setattr(batch, "write_states", unreachable)
    results = _run(engine, ["AAA/USD", "NEVER/INGESTED", "BBB/USD"])
    assert isinstance(results["AAA/USD"], OperationalError) and isinstance(results["BBB/USD"], OperationalError)
    assert isinstance(results["NEVER/INGESTED"], UnknownInstrument)
    assert _snapshot(engine) == before


def test_an_instrument_without_candles_in_the_timeframe_computes_nothing_and_stores_no_state(engine, two_markets):
    with engine.begin() as conn:
        ensure_instrument(conn, EXCHANGE, "CCC/USD", "4h")  # ingested, but only on another timeframe
    results = _run(engine, ["CCC/USD", "AAA/USD"])
    assert results["CCC/USD"] == {"symbol": "CCC/USD", "timeframe": "1h", "bars": 0, "rows_written": 0,
                                  "path": "warmup", "reason": "no state"}
    assert len(table_rows(engine, "SELECT 1 FROM indicator_state")) == 2


def test_a_fallback_without_any_new_bar_still_stores_a_fresh_state(engine):
    market = _market("AAA/USD")
    _store(engine, "AAA/USD", market.iloc[:HISTORY], open_last=False)
    _run(engine, ["AAA/USD"])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM indicator_state"))
    result = _run(engine, ["AAA/USD"])["AAA/USD"]
    assert (result["path"], result["reason"], result["bars"]) == ("warmup", "no state", 0)
    assert table_rows(engine, "SELECT last_ts FROM indicator_state") == [(market.index[HISTORY - 1].to_pydatetime(),)]
    assert _run(engine, ["AAA/USD"])["AAA/USD"]["path"] == "state"


def test_a_history_too_short_for_a_state_is_computed_and_falls_back_again_next_time(engine):
    _store(engine, "AAA/USD", _market("AAA/USD").iloc[:150])
    first, second = _run(engine, ["AAA/USD"])["AAA/USD"], _run(engine, ["AAA/USD"])["AAA/USD"]
    assert (first["bars"], first["rows_written"], second["reason"]) == (150, 150, "no state")
    assert not table_rows(engine, "SELECT 1 FROM indicator_state")


def test_a_stored_state_reads_back_bit_for_bit(engine):
    instrument_id = _store(engine, "AAA/USD", _market("AAA/USD").iloc[:10])
    rng = np.random.default_rng(3)
    vector = np.concatenate((rng.normal(size=50) * 10.0 ** rng.integers(-300, 300, size=50),
                             [5e-324, 1.7976931348623157e308, -0.0, 0.1 + 0.2]))
    stamp = pd.Timestamp("2024-01-01T05:00:00Z")
    with engine.begin() as conn:
        assert write_states(conn, "1h", [(instrument_id, IndicatorState(stamp, "f" * 32, vector))]) == 1
        assert write_states(conn, "1h", [(instrument_id, IndicatorState(stamp, "f" * 32, vector))]) == 0
        stored = read_series(conn, [instrument_id], "1h", "indicators")[instrument_id].state
    assert stored.last_ts == stamp and stored.fingerprint == "f" * 32
    assert stored.vector.tobytes() == vector.tobytes()


def test_an_older_state_never_replaces_a_newer_one(engine):
    instrument_id = _store(engine, "AAA/USD", _market("AAA/USD").iloc[:10])
    newer, older = pd.Timestamp("2024-01-02T00:00:00Z"), pd.Timestamp("2024-01-01T00:00:00Z")
    with engine.begin() as conn:
        write_states(conn, "1h", [(instrument_id, IndicatorState(newer, "a" * 32, np.ones(3)))])
        assert write_states(conn, "1h", [(instrument_id, IndicatorState(older, "a" * 32, np.zeros(3)))]) == 0
        assert read_series(conn, [instrument_id], "1h", "indicators")[instrument_id].state.last_ts == newer
