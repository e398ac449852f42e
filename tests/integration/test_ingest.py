"""Ingest against real Postgres, real Redis and the real ccxt client talking to the simulator, in each of its dialects.

Where the exchanges differ (Kraken serves only its latest 720 bars), the expectation comes from the
source's capabilities, so each test says what the pipeline does on each exchange.
"""

from __future__ import annotations

import pytest

from services.core.exceptions import PermanentSourceError
from services.core.timeframe import Timeframe
from services.core.timeparse import parse_instant_ms
from services.exchange_sim.server import running_simulator
from services.ingest.fetching import backfill, repair_windows, sync_instrument
from services.ingest.windows import plan_windows
from tests.utils.ingest import ledger, sim_context, table_rows

pytestmark = pytest.mark.integration

H = 3_600_000
SINCE = parse_instant_ms("2024-01-01")
UNTIL = parse_instant_ms("2024-03-01")  # two months: 60 days of hourly bars
NOW = "2024-03-01T00:30:00Z"
SYMBOLS = ("BTC/USD", "ETH/USD")
CANDLES_SQL = """SELECT i.symbol, (extract(epoch FROM c.ts) * 1000)::bigint, c.open, c.high, c.low, c.close,
                        c.volume, c.is_closed, c.updated_at
                   FROM candles c JOIN instruments i ON i.id = c.instrument_id ORDER BY 1, 2"""


@pytest.fixture()
def sim(dialect):
    with running_simulator(symbols=["BTC/USD", "ETH/USD", "SOL/USD"], now=NOW, seed=7,
                           dialect=dialect.name) as (url, simulator):
        yield url, simulator


@pytest.fixture()
def ctx(sim, engine, redis_url, dialect):
    return sim_context(sim[0], engine, redis_url, exchange=dialect.name)


@pytest.fixture()
def start(ctx):
    """The oldest bar a backfill can ask for: SINCE, or on a recent-only exchange its oldest bar served."""
    caps = ctx.source.capabilities
    return SINCE if caps.full_history else max(SINCE, UNTIL - (caps.max_candles - 1) * H)


def window_sizes(ctx, since_ms: int, until_ms: int) -> list[int]:
    """Bars per fetch window of [since, until), as the source's request limit cuts it."""
    plan = plan_windows(since_ms, until_ms, Timeframe.parse("1h"), ctx.source.capabilities.max_candles)
    return [(end - begin) // H for begin, end in plan]


def test_a_two_month_hourly_backfill_of_two_symbols_stores_exactly_the_expected_candles(sim, ctx, engine, start):
    if not ctx.source.capabilities.full_history:
        # Kraken: two months are more than its latest 720 bars; refused whole, nothing registered.
        with pytest.raises(PermanentSourceError, match="serves only its latest 720 1h candles"):
            backfill(ctx, "BTC/USD", "1h", SINCE, UNTIL)
        assert ledger(engine) == [] and table_rows(engine, "SELECT 1 FROM instruments") == []
    sizes, bars = window_sizes(ctx, start, UNTIL), (UNTIL - start) // H
    for symbol in SYMBOLS:
        report = backfill(ctx, symbol, "1h", start, UNTIL)
        assert (report.candles, report.windows, report.rejected, report.failed) == (bars, len(sizes), 0, [])
    stored = table_rows(engine, CANDLES_SQL)
    assert len(stored) == 2 * bars
    for symbol in SYMBOLS:
        expected = sim[1].ohlcv(symbol, "1h", start, UNTIL)
        assert len(expected) == bars
        got = [row[1:7] for row in stored if row[0] == symbol]
        assert got == [tuple(row) for row in expected]
    assert all(row[7] for row in stored), "every bar before now is closed"
    assert [(w["symbol"], w["status"], w["candles"]) for w in ledger(engine)] == [
        (symbol, "ok", size) for symbol in SYMBOLS for size in sizes]


def test_the_windows_follow_the_exchanges_request_limit(ctx, dialect, start):
    assert window_sizes(ctx, start, UNTIL) == {"binance": [1000, 440], "kraken": [719]}[dialect.name]


def test_running_the_same_backfill_again_changes_nothing(ctx, engine, start):
    backfill(ctx, "BTC/USD", "1h", start, UNTIL)
    before = table_rows(engine, CANDLES_SQL)
    report = backfill(ctx, "BTC/USD", "1h", start, UNTIL)
    assert report.candles == (UNTIL - start) // H  # fetched and validated again …
    assert table_rows(engine, CANDLES_SQL) == before  # … yet not one row rewritten
    assert len(ledger(engine)) == len(window_sizes(ctx, start, UNTIL))


def test_a_sync_after_the_clock_advances_adds_only_new_candles_and_closes_the_open_one(sim, ctx, engine):
    _, simulator = sim
    backfill(ctx, "BTC/USD", "1h", UNTIL - 10 * H)
    first = table_rows(engine, CANDLES_SQL)
    assert len(first) == 11 and first[-1][1] == UNTIL and first[-1][7] is False  # 00:00 bar still open
    simulator.advance(2 * 3600)  # now 02:30
    report = sync_instrument(ctx, "BTC/USD", "1h")
    after = table_rows(engine, CANDLES_SQL)
    assert report.candles == 3  # the bar that was open, plus two new ones
    assert len(after) == 13
    assert after[:10] == first[:10], "closed candles are never rewritten"
    assert [(row[1], row[7]) for row in after[10:]] == [(UNTIL, True), (UNTIL + H, True), (UNTIL + 2 * H, False)]
    final = sim[1].ohlcv("BTC/USD", "1h", UNTIL, UNTIL + H)[0]
    assert after[10][1:7] == tuple(final)


def test_rate_limits_and_server_errors_are_retried_and_the_ledger_counts_the_attempts(sim, ctx, engine, dialect,
                                                                                      start):
    # Binance answers a rate limit with HTTP 429, Kraken with EGeneral:Too many requests in a 200.
    sim[1].set_faults([{"kind": "http_503", "path": dialect.candles_path, "times": 1},
                       {"kind": "http_429", "path": dialect.candles_path, "times": 2}])
    report = backfill(ctx, "BTC/USD", "1h", start, start + 100 * H)
    assert report.candles == 100 and not report.failed
    assert [(w["status"], w["attempts"]) for w in ledger(engine)] == [("ok", 4)]


@pytest.mark.parametrize("fault", [{"kind": "timeout", "seconds": 1.5, "times": 1},
                                   {"kind": "malformed_json", "times": 2},
                                   {"kind": "html_page", "times": 1},
                                   {"kind": "http_503", "body": "json", "times": 1}])
def test_timeouts_and_unreadable_bodies_are_retried(sim, engine, redis_url, dialect, start, fault):
    ctx = sim_context(sim[0], engine, redis_url, timeout_ms=500, exchange=dialect.name)
    sim[1].set_faults([{**fault, "path": dialect.candles_path}])
    report = backfill(ctx, "ETH/USD", "1h", start, start + 24 * H)
    assert report.candles == 24
    assert ledger(engine)[0]["attempts"] == fault["times"] + 1


def test_a_window_that_keeps_failing_is_ledgered_as_failed_then_repaired(sim, ctx, engine, dialect, start):
    sizes = window_sizes(ctx, start, UNTIL)  # the last window fails: on Kraken the only one
    last_start = UNTIL - sizes[-1] * H
    sim[1].set_faults([{"kind": "http_500", "path": dialect.candles_path, "start_ms": last_start}])
    report = backfill(ctx, "BTC/USD", "1h", start, UNTIL)
    assert report.candles == sum(sizes[:-1]) and len(report.failed) == 1
    failed = [w for w in ledger(engine) if w["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 4 and "ExchangeNotAvailable" in failed[0]["error"]
    assert failed[0]["window_start"].timestamp() * 1000 == last_start
    sim[1].clear_faults()
    outcomes = repair_windows(ctx)
    assert [(o["was"], o["status"], o["candles"]) for o in outcomes] == [("failed", "ok", sizes[-1])]
    assert len(table_rows(engine, CANDLES_SQL)) == sum(sizes)
    assert {w["status"] for w in ledger(engine)} == {"ok"}


def test_an_unknown_symbol_fails_at_once_with_a_clear_message_and_is_never_registered(sim, ctx, engine, dialect,
                                                                                      start):
    with pytest.raises(PermanentSourceError, match="does not list symbol 'DOGE/USD'"):
        backfill(ctx, "DOGE/USD", "1h", start, start + 10 * H)
    counts = sim[1].request_counts()
    assert counts.get(dialect.candles_path, 0) == 0
    assert counts[dialect.markets_path] == 2  # the cached markets, then one fresh look
    assert ledger(engine) == []
    assert table_rows(engine, "SELECT symbol FROM instruments WHERE symbol = 'DOGE/USD'") == []


def test_a_market_listed_while_running_is_served_after_one_fresh_look(sim, ctx, engine, dialect, start):
    backfill(ctx, "BTC/USD", "1h", start, start + 10 * H)  # the market list is now cached
    sim[1].list_markets(["DOGE/USD"])
    report = backfill(ctx, "DOGE/USD", "1h", start, start + 10 * H)
    assert report.candles == 10
    stored = [row[1:7] for row in table_rows(engine, CANDLES_SQL) if row[0] == "DOGE/USD"]
    assert stored == [tuple(row) for row in sim[1].ohlcv("DOGE/USD", "1h", start, start + 10 * H)]
    assert sim[1].request_counts()[dialect.markets_path] == 2


def test_a_market_delisted_while_running_fails_its_window_as_a_permanent_error(sim, ctx, engine, start):
    backfill(ctx, "ETH/USD", "1h", start, start + 10 * H)
    sim[1].delist_markets(["ETH/USD"])  # the worker's cached market list still has it
    with pytest.raises(PermanentSourceError, match="ETH/USD"):
        backfill(ctx, "ETH/USD", "1h", start + 10 * H, start + 20 * H)
    failed = [w for w in ledger(engine) if w["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 1, "not retried: the exchange no longer lists it"


def test_missing_candles_are_reported_as_gaps_in_the_ledger(sim, ctx, engine, start):
    gone = [start + 5 * H, start + 6 * H]
    sim[1].set_faults([{"kind": "missing_candles", "symbol": "BTC/USD", "ts": gone}])
    report = backfill(ctx, "BTC/USD", "1h", start, start + 48 * H)
    assert (report.candles, report.missing) == (46, 2)
    assert [(w["status"], w["missing"]) for w in ledger(engine)] == [("gaps", 2)]
    stored = {row[1] for row in table_rows(engine, CANDLES_SQL)}
    assert not stored & set(gone)


@pytest.mark.parametrize(("defect", "reason"), [("high_below_low", "high_below_low"),
                                                 ("negative_price", "non_positive_price"),
                                                 ("zero_price", "non_positive_price"),
                                                 ("nan_price", "non_finite_price"),
                                                 ("negative_volume", "negative_volume")])
def test_each_kind_of_bad_candle_lands_in_rejected_candles_while_good_ones_are_stored(sim, ctx, engine, start,
                                                                                       defect, reason):
    bad_ts = start + 3 * H
    sim[1].set_faults([{"kind": "bad_candle", "symbol": "BTC/USD", "ts": [bad_ts], "defect": defect}])
    report = backfill(ctx, "BTC/USD", "1h", start, start + 10 * H)
    assert (report.candles, report.rejected) == (9, 1)
    assert [(w["status"], w["missing"]) for w in ledger(engine)] == [("gaps", 1)], "the bad bar is still owed"
    rejected = table_rows(engine, "SELECT raw_ts, reason FROM rejected_candles")
    assert rejected == [(bad_ts, reason)]
    assert bad_ts not in {row[1] for row in table_rows(engine, CANDLES_SQL)}
    backfill(ctx, "BTC/USD", "1h", start, start + 10 * H)
    assert len(table_rows(engine, "SELECT 1 FROM rejected_candles")) == 1, "a refusal is kept once"


def test_a_sync_after_an_outage_longer_than_a_recent_only_exchange_remembers_reports_the_lost_bars(
        sim, ctx, engine):
    from dataclasses import replace

    ctx.source.capabilities = replace(ctx.source.capabilities, full_history=False, max_candles=24)
    backfill(ctx, "BTC/USD", "1h", UNTIL - 10 * H)
    sim[1].advance(48 * 3600)  # two days away; the exchange keeps one
    report = sync_instrument(ctx, "BTC/USD", "1h")
    assert len(report.failed) == 1 and "serves only its latest 24 1h candles" in report.failed[0]["error"]
    lost = [w for w in ledger(engine) if w["status"] == "failed"]
    assert len(lost) == 1 and lost[0]["missing"] == 25
    assert report.candles == 24 and report.missing == 25


def test_a_sync_parses_its_timeframe_once_however_many_windows_it_fetches(sim, ctx, engine, monkeypatch):
    from dataclasses import replace

    from services.core.timeframe import Timeframe

    ctx.source.capabilities = replace(ctx.source.capabilities, max_candles=4)
    built = []
    post_init = Timeframe.__post_init__
    monkeypatch.setattr(Timeframe, "__post_init__", lambda tf: (built.append(tf.name), post_init(tf)))
    report = sync_instrument(ctx, "BTC/USD", "1h", lookback_bars=10)
    if ctx.source.capabilities.full_history:
        assert report.windows == 3 and report.candles == 11  # ten closed bars back, plus the open one
    else:  # now it serves only its latest 4: the older 7 are ledgered lost, one window fetches the rest
        assert (report.windows, report.candles, report.missing) == (2, 4, 7)
    assert built == ["1h"]


def test_a_malformed_timeframe_is_refused_before_the_exchange_is_asked_anything(sim, ctx, engine):
    with pytest.raises(ValueError, match="malformed timeframe '1w'"):
        sync_instrument(ctx, "BTC/USD", "1w")
    with pytest.raises(ValueError, match="malformed timeframe '0h'"):
        backfill(ctx, "BTC/USD", "0h", SINCE, UNTIL)
    assert sim[1].request_counts() == {} and ledger(engine) == []
