"""The market sync against the simulator, in each exchange dialect, through the real ccxt client: markets
recorded, delistings retire instruments, MARKETS_AUTO_ADD adds what it names; and the universe rules on top of
the recorded list."""

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


@pytest.fixture()
def exchange(dialect, engine, redis_url):
    """A simulator listing LISTED in `dialect`, and a function running one market sync against it."""
    with running_simulator(symbols=LISTED, dialect=dialect.name) as (url, sim):
        source = sim_context(url, engine, redis_url, exchange=dialect.name).source

        def sync(rule=None):
            return sync_markets(source, engine, parse_auto_add(rule) if rule else None, ["1h"])
        yield dialect.name, sim, sync


def test_the_markets_the_exchange_lists_are_recorded_with_their_fields(engine, exchange, dialect):
    name, _sim, sync = exchange
    report = sync()
    assert (report.markets, sorted(report.new), report.gone, report.added, report.retired) == (
        4, sorted(LISTED), [], [], [])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT symbol, market_id, base, quote, type, active, precision, gone_at "
                                 "FROM markets WHERE exchange = :e ORDER BY symbol"), {"e": name}).mappings().all()
    assert [(r["symbol"], r["base"], r["quote"], r["type"]) for r in rows] == [
        ("BTC/USD", "BTC", "USD", "spot"), ("BTC/USDT", "BTC", "USDT", "spot"),
        ("ETH/USD", "ETH", "USD", "spot"), ("SOL/USD", "SOL", "USD", "spot")]
    assert rows[0]["market_id"] == dialect.ids["BTC/USD"]  # the exchange's own id (XXBTZUSD on Kraken)
    assert all(r["active"] is True and r["gone_at"] is None for r in rows)
    assert all(set(r["precision"]) >= {"price", "amount"} for r in rows)


def test_a_market_that_disappears_retires_its_instrument_and_keeps_its_data(engine, exchange):
    name, sim, sync = exchange
    with engine.begin() as conn:
        seed_instruments(conn, name, ["BTC/USD", "SOL/USD"], ["1h"])
    sync()
    sim.delist_markets(["SOL/USD"])
    report = sync()
    assert (report.new, report.gone, report.retired) == ([], ["SOL/USD"], ["SOL/USD"])
    with engine.connect() as conn:
        rows = {row["symbol"]: row for row in read_instruments(conn, exchange=name)}
        gone_at = conn.execute(text("SELECT gone_at FROM markets WHERE symbol = 'SOL/USD'")).scalar_one()
    assert rows["SOL/USD"]["active"] is False and rows["SOL/USD"]["market_gone_at"] is not None
    assert rows["SOL/USD"]["retired_at"] is not None and gone_at is not None
    assert rows["BTC/USD"]["active"] is True
    sim.list_markets(["SOL/USD"])
    listed_again = sync()  # relisted: the market is back, the instrument stays retired
    assert listed_again.new == ["SOL/USD"] and listed_again.retired == []
    with engine.connect() as conn:
        assert [row["symbol"] for row in read_instruments(conn, exchange=name, active=False)] == ["SOL/USD"]


def test_an_instrument_the_exchange_never_listed_is_retired_by_the_first_sync(engine, exchange):
    name, _sim, sync = exchange
    with engine.begin() as conn:
        seed_instruments(conn, name, ["BTC/USD", "DOGE/USD"], ["1h"])  # a typo in SYMBOLS, say
    assert sync().retired == ["DOGE/USD"]


def test_the_auto_add_rule_adds_matching_markets_once_and_never_re_adds_a_retired_one(engine, exchange):
    name, _sim, sync = exchange
    report = sync(rule="quote=USD,type=spot")
    assert report.added == ["BTC/USD", "ETH/USD", "SOL/USD"]
    with engine.connect() as conn:
        rows = read_instruments(conn, exchange=name)
    assert {(r["symbol"], r["source"], tuple(r["timeframes"])) for r in rows} == {
        (s, "market-sync", ("1h",)) for s in ("BTC/USD", "ETH/USD", "SOL/USD")}
    with engine.begin() as conn:
        conn.execute(text("UPDATE instruments SET active = false WHERE symbol = 'ETH/USD'"))
    assert sync(rule="quote=USD,type=spot").added == []


def test_an_exchange_answering_no_market_at_all_records_nothing(engine, exchange):
    name, sim, sync = exchange
    with engine.begin() as conn:
        seed_instruments(conn, name, ["BTC/USD"], ["1h"])
    sim.delist_markets(LISTED)
    with pytest.raises(ValueError, match="listed no market"):
        sync()
    with engine.connect() as conn:
        assert read_instruments(conn, active=True)[0]["symbol"] == "BTC/USD"


def test_adding_needs_a_synced_list_and_a_listed_market(engine, exchange):
    name, _sim, sync = exchange
    with engine.begin() as conn, pytest.raises(UniverseError) as unsynced:
        add_instrument(conn, name, "SOL/USD", ["1h"], "api")
    assert unsynced.value.status == 409 and "has not been synced" in str(unsynced.value)
    sync()
    with engine.begin() as conn:
        with pytest.raises(UniverseError) as unlisted:
            add_instrument(conn, name, "DOGE/USD", ["1h"], "api")
        row = add_instrument(conn, name, "SOL/USD", ["1h", "4h"], "api")
    assert unlisted.value.status == 400 and "does not list DOGE/USD" in str(unlisted.value)
    assert (row["symbol"], row["timeframes"], row["source"], row["active"]) == ("SOL/USD", ["1h", "4h"], "api", True)


def test_add_true_adds_re_activates_and_extends_timeframes_and_without_it_nothing_changes(engine, exchange):
    name, _sim, sync = exchange
    sync()
    with engine.begin() as conn:
        seed_instruments(conn, name, ["BTC/USD", "ETH/USD"], ["1h"])
        conn.execute(text("UPDATE instruments SET active = false WHERE symbol = 'ETH/USD'"))
    for symbols, timeframes, words in ((["SOL/USD"], None, "not in the universe"), (["ETH/USD"], None, "retired"),
                                       (["BTC/USD"], ["4h"], "does not keep 4h")):
        with engine.begin() as conn, pytest.raises(UniverseError, match=words):
            admit_scope(conn, name, symbols, timeframes, False, "api", ["1h"])
    with engine.begin() as conn:
        changes = admit_scope(conn, name, ["BTC/USD", "ETH/USD", "SOL/USD"], ["4h"], True, "api", ["1h"])
        rows = {r["symbol"]: r for r in read_instruments(conn)}
    assert changes == ["added SOL/USD (4h)", "re-activated ETH/USD", "added 4h to BTC/USD", "added 4h to ETH/USD"]
    assert rows["BTC/USD"]["timeframes"] == ["1h", "4h"] and rows["ETH/USD"]["active"]
    assert rows["SOL/USD"]["source"] == "api"
