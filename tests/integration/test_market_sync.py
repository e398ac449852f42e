"""The market sync against the simulator through the real ccxt client: markets recorded, delistings retire
instruments, MARKETS_AUTO_ADD adds what it names; and the universe rules on top of the recorded list."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.core.auto_add import parse_auto_add
from services.core.store.instruments import read_instruments, seed_instruments
from services.core.store.universe import UniverseError, add_instrument, admit_scope
from services.exchange_sim.server import running_simulator
from services.ingest.market_sync import sync_markets
from tests.utils.ingest import sim_context

pytestmark = pytest.mark.integration

LISTED = ["BTC/USD", "ETH/USD", "SOL/USD", "BTC/USDT"]


def _sync(engine, redis_url, symbols, rule=None):
    with running_simulator(symbols=symbols) as (url, _sim):
        source = sim_context(url, engine, redis_url).source
        return sync_markets(source, engine, parse_auto_add(rule) if rule else None, ["1h"])


def test_the_markets_the_exchange_lists_are_recorded_with_their_fields(engine, redis_url):
    report = _sync(engine, redis_url, LISTED)
    assert (report.markets, sorted(report.new), report.gone, report.added, report.retired) == (
        4, sorted(LISTED), [], [], [])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT symbol, market_id, base, quote, type, active, precision, gone_at "
                                 "FROM markets WHERE exchange = 'binance' ORDER BY symbol")).mappings().all()
    assert [(r["symbol"], r["market_id"], r["base"], r["quote"], r["type"]) for r in rows] == [
        ("BTC/USD", "BTCUSD", "BTC", "USD", "spot"), ("BTC/USDT", "BTCUSDT", "BTC", "USDT", "spot"),
        ("ETH/USD", "ETHUSD", "ETH", "USD", "spot"), ("SOL/USD", "SOLUSD", "SOL", "USD", "spot")]
    assert all(r["active"] is True and r["gone_at"] is None for r in rows)
    assert all(set(r["precision"]) >= {"price", "amount"} for r in rows)


def test_a_market_that_disappears_retires_its_instrument_and_keeps_its_data(engine, redis_url):
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD", "SOL/USD"], ["1h"])
    _sync(engine, redis_url, LISTED)
    report = _sync(engine, redis_url, ["BTC/USD", "ETH/USD", "BTC/USDT"])  # SOL/USD delisted
    assert (report.new, report.gone, report.retired) == ([], ["SOL/USD"], ["SOL/USD"])
    with engine.connect() as conn:
        rows = {row["symbol"]: row for row in read_instruments(conn, exchange="binance")}
        gone_at = conn.execute(text("SELECT gone_at FROM markets WHERE symbol = 'SOL/USD'")).scalar_one()
    assert rows["SOL/USD"]["active"] is False and rows["SOL/USD"]["market_gone_at"] is not None
    assert rows["SOL/USD"]["retired_at"] is not None and gone_at is not None
    assert rows["BTC/USD"]["active"] is True
    listed_again = _sync(engine, redis_url, LISTED)  # relisted: the market is back, the instrument stays retired
    assert listed_again.new == ["SOL/USD"] and listed_again.retired == []
    with engine.connect() as conn:
        assert not read_instruments(conn, exchange="binance", active=False)[0]["active"]


def test_an_instrument_the_exchange_never_listed_is_retired_by_the_first_sync(engine, redis_url):
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD", "DOGE/USD"], ["1h"])  # a typo in SYMBOLS, say
    assert _sync(engine, redis_url, LISTED).retired == ["DOGE/USD"]


def test_the_auto_add_rule_adds_matching_markets_once_and_never_re_adds_a_retired_one(engine, redis_url):
    report = _sync(engine, redis_url, LISTED, rule="quote=USD,type=spot")
    assert report.added == ["BTC/USD", "ETH/USD", "SOL/USD"]
    with engine.connect() as conn:
        rows = read_instruments(conn, exchange="binance")
    assert {(r["symbol"], r["source"], tuple(r["timeframes"])) for r in rows} == {
        (s, "market-sync", ("1h",)) for s in ("BTC/USD", "ETH/USD", "SOL/USD")}
    with engine.begin() as conn:
        conn.execute(text("UPDATE instruments SET active = false WHERE symbol = 'ETH/USD'"))
    assert _sync(engine, redis_url, LISTED, rule="quote=USD,type=spot").added == []


def test_an_exchange_answering_no_market_at_all_records_nothing(engine, redis_url):
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD"], ["1h"])
    with pytest.raises(ValueError, match="listed no market"):
        _sync(engine, redis_url, [])
    with engine.connect() as conn:
        assert read_instruments(conn, active=True)[0]["symbol"] == "BTC/USD"


def test_adding_needs_a_synced_list_and_a_listed_market(engine, redis_url):
    with engine.begin() as conn, pytest.raises(UniverseError) as unsynced:
        add_instrument(conn, "binance", "SOL/USD", ["1h"], "api")
    assert unsynced.value.status == 409 and "has not been synced" in str(unsynced.value)
    _sync(engine, redis_url, LISTED)
    with engine.begin() as conn:
        with pytest.raises(UniverseError) as unlisted:
            add_instrument(conn, "binance", "DOGE/USD", ["1h"], "api")
        row = add_instrument(conn, "binance", "SOL/USD", ["1h", "4h"], "api")
    assert unlisted.value.status == 400 and "does not list DOGE/USD" in str(unlisted.value)
    assert (row["symbol"], row["timeframes"], row["source"], row["active"]) == ("SOL/USD", ["1h", "4h"], "api", True)


def test_add_true_adds_re_activates_and_extends_timeframes_and_without_it_nothing_changes(engine, redis_url):
    _sync(engine, redis_url, LISTED)
    with engine.begin() as conn:
        seed_instruments(conn, "binance", ["BTC/USD", "ETH/USD"], ["1h"])
        conn.execute(text("UPDATE instruments SET active = false WHERE symbol = 'ETH/USD'"))
    for symbols, timeframes, words in ((["SOL/USD"], None, "not in the universe"), (["ETH/USD"], None, "retired"),
                                       (["BTC/USD"], ["4h"], "does not keep 4h")):
        with engine.begin() as conn, pytest.raises(UniverseError, match=words):
            admit_scope(conn, "binance", symbols, timeframes, False, "api", ["1h"])
    with engine.begin() as conn:
        changes = admit_scope(conn, "binance", ["BTC/USD", "ETH/USD", "SOL/USD"], ["4h"], True, "api", ["1h"])
        rows = {r["symbol"]: r for r in read_instruments(conn)}
    assert changes == ["added SOL/USD (4h)", "re-activated ETH/USD", "added 4h to BTC/USD", "added 4h to ETH/USD"]
    assert rows["BTC/USD"]["timeframes"] == ["1h", "4h"] and rows["ETH/USD"]["active"]
    assert rows["SOL/USD"]["source"] == "api"
