"""A batch sync: many instruments fetched concurrently and stored in one transaction, outcomes per instrument;
each test once per simulator dialect (Binance, Kraken)."""

from __future__ import annotations

import pytest
import redis

from services.core.exceptions import PermanentSourceError
from services.core.timeparse import parse_instant_ms
from services.exchange_sim.server import running_simulator
from services.ingest.fetching import sync_batch
from tests.utils.ingest import ledger, sim_context, table_rows

pytestmark = pytest.mark.integration

H = 3_600_000
NOW = "2024-03-01T00:30:00Z"
LISTED = ["BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD"]
COUNTS_SQL = """SELECT i.symbol, count(*), max(c.updated_at) FROM candles c JOIN instruments i ON i.id = c.instrument_id
                GROUP BY i.symbol ORDER BY 1"""


@pytest.fixture()
def sim(dialect):
    with running_simulator(symbols=LISTED, now=NOW, seed=11, dialect=dialect.name) as (url, simulator):
        yield url, simulator


@pytest.fixture()
def ctx(sim, engine, redis_url, dialect):
    return sim_context(sim[0], engine, redis_url, exchange=dialect.name)


def test_a_batch_stores_every_instruments_candles_as_the_exchange_serves_them(sim, ctx, engine):
    outcomes = sync_batch(ctx, LISTED, "1h", lookback_bars=48, concurrency=4)
    assert {symbol: report.candles for symbol, report in outcomes.items()} == dict.fromkeys(LISTED, 49)
    now_ms = parse_instant_ms(NOW)
    for symbol in LISTED:
        stored = table_rows(engine, """SELECT (extract(epoch FROM c.ts) * 1000)::bigint, c.open, c.high, c.low,
                                              c.close, c.volume
                                         FROM candles c JOIN instruments i ON i.id = c.instrument_id
                                        WHERE i.symbol = :s ORDER BY 1""", s=symbol)
        expected = sim[1].ohlcv(symbol, "1h", stored[0][0], now_ms + 1)
        assert stored == [tuple(row) for row in expected]


def test_an_unlisted_symbol_in_a_batch_is_named_never_registered_while_its_neighbours_are_stored(ctx, engine):
    outcomes = sync_batch(ctx, ["BTC/USD", "ZZZ/USD", "ETH/USD"], "1h", lookback_bars=10, concurrency=3)
    assert isinstance(outcomes["ZZZ/USD"], PermanentSourceError)
    assert "does not list symbol 'ZZZ/USD'" in str(outcomes["ZZZ/USD"])
    assert outcomes["BTC/USD"].candles == outcomes["ETH/USD"].candles == 11
    assert [row[:2] for row in table_rows(engine, COUNTS_SQL)] == [("BTC/USD", 11), ("ETH/USD", 11)]
    assert [(w["symbol"], w["status"]) for w in ledger(engine)] == [("BTC/USD", "ok"), ("ETH/USD", "ok")]
    assert table_rows(engine, "SELECT 1 FROM instruments WHERE symbol = 'ZZZ/USD'") == [], "no half-registered one"


def test_a_redelivered_batch_adds_and_rewrites_nothing(ctx, engine):
    sync_batch(ctx, LISTED, "1h", lookback_bars=24, concurrency=4)
    before = table_rows(engine, COUNTS_SQL)
    again = sync_batch(ctx, LISTED, "1h", lookback_bars=24, concurrency=4)
    assert all(report.candles == 1 for report in again.values()), "only the open bar is fetched again"
    assert table_rows(engine, COUNTS_SQL) == before, "the unchanged open bar is not rewritten"


def test_a_batch_after_the_clock_advances_fetches_only_the_new_bars_of_each_instrument(sim, ctx, engine):
    _, simulator = sim
    sync_batch(ctx, LISTED, "1h", lookback_bars=24, concurrency=4)
    simulator.advance(3 * 3600)
    outcomes = sync_batch(ctx, LISTED, "1h", lookback_bars=24, concurrency=4)
    assert {symbol: report.candles for symbol, report in outcomes.items()} == dict.fromkeys(LISTED, 4)
    assert [row[1] for row in table_rows(engine, COUNTS_SQL)] == [28] * len(LISTED)


def test_a_batch_takes_its_rate_limit_slots_in_a_few_round_trips_not_one_per_request(sim, ctx, engine, redis_url):
    client = redis.Redis.from_url(redis_url)
    sync_batch(ctx, LISTED, "1h", lookback_bars=48, concurrency=4)  # loads the markets, reads the clock
    sim[1].advance(3 * 3600)
    before = client.info("commandstats")["cmdstat_evalsha"]["calls"]
    outcomes = sync_batch(ctx, LISTED, "1h", lookback_bars=48, concurrency=4)
    calls = client.info("commandstats")["cmdstat_evalsha"]["calls"] - before
    assert {symbol: report.candles for symbol, report in outcomes.items()} == dict.fromkeys(LISTED, 4)
    # Four fetches and one clock read: one reservation for the clock, one for the batch's four.
    assert calls == 2


def test_the_loaded_market_list_keeps_no_raw_payload_and_still_serves_candles(sim, ctx, engine, dialect):
    outcomes = sync_batch(ctx, ["BTC/USD"], "1h", lookback_bars=2, concurrency=1)
    markets = ctx.source._client.markets
    assert markets["BTC/USD"]["id"] == dialect.ids["BTC/USD"] and markets["BTC/USD"]["spot"] is True
    assert all(market["info"] == {} for market in markets.values())
    assert outcomes["BTC/USD"].candles == 3


def test_a_market_delisted_between_batches_is_named_while_the_others_are_stored(sim, ctx, engine):
    sync_batch(ctx, LISTED, "1h", lookback_bars=4, concurrency=4)  # the worker caches the market list
    sim[1].delist_markets(["ADA/USD"])
    sim[1].advance(3600)
    outcomes = sync_batch(ctx, LISTED, "1h", lookback_bars=4, concurrency=4)
    assert isinstance(outcomes["ADA/USD"], PermanentSourceError) and "ADA/USD" in str(outcomes["ADA/USD"])
    assert {symbol: outcomes[symbol].candles for symbol in LISTED[:3]} == dict.fromkeys(LISTED[:3], 2)
    assert [w["status"] for w in ledger(engine) if w["symbol"] == "ADA/USD"] == ["ok", "failed"]
