"""The candle write path on real Postgres: new rows, re-fetches, open and closed bars, mixed batches, racing writers."""

from __future__ import annotations

import logging
import random

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.core.store import bulk
from services.ingest import store
from services.ingest.store import upsert_candle_batch, upsert_candles

pytestmark = pytest.mark.integration

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
TF = "1h"
STORED_SQL = """SELECT instrument_id, (extract(epoch FROM ts) * 1000)::bigint, open, high, low, close, volume,
                       is_closed, updated_at FROM candles ORDER BY instrument_id, timeframe, ts"""
OLD_STAMP = "2000-01-01T00:00:00Z"


@pytest.fixture()
def db(engine):
    """The emptied database with instruments 1, 2 and 3."""
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO instruments (id, exchange, symbol, timeframes)
            SELECT n, 'test', 'SYM' || n || '/USD', ARRAY['1h'] FROM generate_series(1, 3) n"""))
    return engine


def bar(instrument: int, n: int, closed: bool = True, price: float = 100.0) -> tuple:
    """Bar `n` (hours after T0) of `instrument`, prices derived from `price` so rows differ between bars."""
    p = price + n
    return (instrument, T0 + n * H, p, p + 1.5, p - 1.25, p + 0.5, 10.0 + n / 7, closed)


def write(engine, rows, timeframe: str = TF) -> int:
    with engine.begin() as conn:
        return upsert_candle_batch(conn, timeframe, rows)


def stored(engine) -> list[tuple]:
    """Every candle as (instrument, ts_ms, o, h, l, c, v, is_closed)."""
    with engine.connect() as conn:
        return [tuple(row)[:8] for row in conn.execute(text(STORED_SQL))]


def age_stamps(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE candles SET updated_at = :old"), {"old": OLD_STAMP})


def touched(engine) -> list[tuple[int, int]]:
    """(instrument, ts_ms) of rows whose updated_at moved since age_stamps()."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT instrument_id, (extract(epoch FROM ts) * 1000)::bigint FROM candles "
            "WHERE updated_at > :old ORDER BY 1, 2"), {"old": OLD_STAMP})]


class Spy:
    """Counts calls of a store function while still calling it."""

    def __init__(self, monkeypatch, owner, name: str) -> None:
        self.calls = 0
        real = getattr(owner, name)

        def spy(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(owner, name, spy)


@pytest.fixture()
def paths(monkeypatch):
    """How many batches took the direct COPY and how many the staging path."""
    return {"direct": Spy(monkeypatch, store, "_copy_new_candles"), "staging": Spy(monkeypatch, store, "copy_upsert")}


def test_new_rows_are_copied_in_with_every_value_and_instant_exact(db, paths):
    rows = [bar(1, n) for n in range(5)] + [bar(1, 5, closed=False)]
    rows.append((2, 1_700_000_000_123, 0.1 + 0.2, 1e-300, 123456789.12345678, 2.0**53 + 2, 0.0, True))
    rows.append((2, 946_684_799_999, 1.0, 2.0, 0.5, 1.5, float("inf"), True))  # before 2000: a negative offset
    assert write(db, rows) == 8
    assert stored(db) == sorted(rows)
    assert (paths["direct"].calls, paths["staging"].calls) == (1, 0)


def test_writing_the_same_rows_again_writes_nothing_and_touches_no_stamp(db, paths):
    rows = [bar(i, n) for i in (1, 2) for n in range(50)] + [bar(i, 50, closed=False) for i in (1, 2)]
    assert write(db, rows) == 102
    age_stamps(db)
    assert write(db, rows) == 0
    assert write(db, iter(rows)) == 0
    assert touched(db) == []
    assert stored(db) == sorted(rows)
    assert (paths["direct"].calls, paths["staging"].calls) == (1, 0), "a re-fetch reads, and writes nothing"


def test_an_open_candle_is_replaced_only_when_something_changed(db):
    write(db, [bar(1, 0), bar(1, 1, closed=False)])
    age_stamps(db)
    assert write(db, [bar(1, 1, closed=False)]) == 0
    assert touched(db) == []
    moved = bar(1, 1, closed=False, price=200.0)
    assert write(db, [moved]) == 1
    assert touched(db) == [(1, T0 + H)]
    assert stored(db) == [bar(1, 0), moved]
    assert write(db, [bar(1, 1, closed=True, price=200.0)]) == 1, "closing it is a change"
    assert stored(db)[-1][-1] is True


def test_a_closed_candle_is_never_replaced(db):
    write(db, [bar(1, 0), bar(1, 1)])
    age_stamps(db)
    assert write(db, [bar(1, 0, price=300.0), bar(1, 1, closed=False, price=300.0)]) == 0
    assert touched(db) == []
    assert stored(db) == [bar(1, 0), bar(1, 1)]


def test_a_mixed_batch_counts_the_new_and_the_replaced_and_leaves_the_rest(db, paths):
    write(db, [bar(1, n) for n in (0, 1, 2, 4)] + [bar(1, 5, closed=False)])
    age_stamps(db)
    batch = [
        bar(1, 0),  # stored closed, equal
        bar(1, 1, price=7.0),  # stored closed, different: immutable
        bar(1, 3),  # a gap in what is stored
        bar(1, 4),
        bar(1, 5, price=9.0),  # stored open, now closed with other prices
        bar(1, 6), bar(1, 7, closed=False),  # newer than anything stored
    ]
    assert write(db, batch) == 4
    assert touched(db) == [(1, T0 + n * H) for n in (3, 5, 6, 7)]
    assert stored(db) == [bar(1, 0), bar(1, 1), bar(1, 2), bar(1, 3), bar(1, 4), bar(1, 5, price=9.0), bar(1, 6),
                          bar(1, 7, closed=False)]
    assert (paths["direct"].calls, paths["staging"].calls) == (2, 1), "new rows copied, the changed one merged"


def test_several_instruments_in_one_batch_are_each_sorted_on_their_own(db):
    write(db, [bar(1, n) for n in range(3)] + [bar(2, 10, closed=False)])
    batch = [bar(i, n) for i in (1, 2, 3) for n in range(12)]  # 1 overlaps, 2 has an open bar inside, 3 is new
    assert write(db, batch) == 9 + 12 + 12
    assert stored(db) == sorted(batch)
    assert write(db, batch) == 0


def test_upsert_candles_writes_one_instruments_rows_the_same_way(db):
    with db.begin() as conn:
        assert upsert_candles(conn, 2, TF, (bar(2, n)[1:] for n in range(4))) == 4
        assert upsert_candles(conn, 2, TF, [bar(2, n)[1:] for n in range(6)]) == 2
    assert [row[1] for row in stored(db)] == [T0 + n * H for n in range(6)]


def test_empty_input_returns_0_without_running_any_sql(db):
    with db.connect() as conn:
        assert upsert_candle_batch(conn, TF, []) == 0
        assert upsert_candle_batch(conn, TF, iter(())) == 0
        assert not conn.in_transaction()


def test_timeframes_are_kept_apart(db):
    write(db, [bar(1, n) for n in range(3)])
    assert write(db, [bar(1, n) for n in range(3)], timeframe="4h") == 3
    assert write(db, [bar(1, n) for n in range(3)], timeframe="4h") == 0
    assert len(stored(db)) == 6


def test_a_racing_writer_that_stored_the_same_keys_first_does_not_lose_the_batch(db, monkeypatch, caplog):
    """Another writer commits some of the batch's keys between this writer's read and its COPY."""
    write(db, [bar(1, 0)])
    theirs = [bar(1, 1, price=50.0), bar(1, 2, closed=False, price=50.0)]
    read, raced = store._stored_candles, []

    def read_then_race(conn, timeframe, batch):
        seen = read(conn, timeframe, batch)
        if not raced:  # the other writer's own read is not raced
            raced.append(True)
            with db.begin() as other:  # its own connection and transaction, committed before ours COPYs
                upsert_candle_batch(other, timeframe, theirs)
        return seen
    monkeypatch.setattr(store, "_stored_candles", read_then_race)
    ours = [bar(1, n) for n in range(5)]
    with caplog.at_level(logging.INFO, logger=store.__name__), db.begin() as conn:
        conn.execute(text("UPDATE instruments SET active = false WHERE id = 3"))  # earlier work in the transaction
        written = upsert_candle_batch(conn, TF, ours)
    # Theirs closed bar 1 first and stays; their open bar 2 is replaced by ours (closed); 3 and 4 are new.
    assert written == 3
    assert stored(db) == [bar(1, 0), theirs[0], bar(1, 2), bar(1, 3), bar(1, 4)]
    assert "met a concurrent writer's" in caplog.text
    with db.connect() as conn:
        assert conn.execute(text("SELECT active FROM instruments WHERE id = 3")).scalar_one() is False, \
            "the savepoint rolled back only the COPY"


def test_rows_the_read_missed_fall_back_to_the_staging_path(db, monkeypatch, paths):
    write(db, [bar(1, 0), bar(1, 1, closed=False)])
    monkeypatch.setattr(store, "_stored_candles", lambda conn, timeframe, batch: {})
    assert write(db, [bar(1, 0, price=1.0), bar(1, 1, price=2.0), bar(1, 2)]) == 2
    assert stored(db) == [bar(1, 0), bar(1, 1, price=2.0), bar(1, 2)]
    assert paths["staging"].calls == 1


def test_an_unknown_instrument_fails_as_it_always_has(db, caplog):
    with pytest.raises(IntegrityError, match="foreign key"), db.begin() as conn:
        upsert_candle_batch(conn, TF, [bar(1, 0), bar(99, 0)])
    assert stored(db) == []
    assert "failed" in caplog.text


@pytest.mark.parametrize("odd", [
    (1, T0, float("nan"), 1.0, 1.0, 1.0, 1.0, True),  # NaN is NULL to the staging path: NOT NULL refuses it
    (1, T0, None, 1.0, 1.0, 1.0, 1.0, True),
    (1, T0, 1.0, 1.0, 1.0, 1.0, 1.0, None),
    (1, T0, "1.5", 2.0, 1.0, 1.5, 1.0, "f"),  # the server parses text, as COPY text always did
    (1, T0, 1, 2, 1, 1, 0, 1),
    (1, T0, 1.0, 1.0, 1.0, 1.0, 1.0),  # a short row
    (1, 2**70, 1.0, 1.0, 1.0, 1.0, 1.0, True),
], ids=["nan", "none-price", "none-closed", "strings", "ints", "short", "far-future"])
def test_values_the_fast_path_does_not_take_behave_exactly_as_on_the_staging_path(db, odd):
    outcomes = []
    for write_path in (upsert_candle_batch, store._merge_candles):
        with db.connect() as conn:
            try:
                outcomes.append((write_path(conn, TF, [odd, bar(2, 0)]), stored_in(conn)))
            except Exception as exc:  # the very exception is what is compared
                outcomes.append((type(exc), None))
            conn.rollback()
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("stored_first", [False, True], ids=["new-key", "stored-closed-key"])
def test_a_key_twice_in_one_batch_behaves_exactly_as_on_the_staging_path(db, stored_first):
    if stored_first:
        write(db, [bar(1, 5)])
    outcomes = []
    for write_path in (upsert_candle_batch, store._merge_candles):
        with db.connect() as conn:
            try:
                outcomes.append((write_path(conn, TF, [bar(1, 5, price=3.0), bar(1, 5, price=4.0)]), stored_in(conn)))
            except Exception as exc:  # the very exception is what is compared
                outcomes.append((type(exc), None))
            conn.rollback()
    assert outcomes[0] == outcomes[1]


def stored_in(conn) -> list[tuple]:
    return [tuple(row)[:8] for row in conn.execute(text(STORED_SQL))]


def test_random_batches_write_exactly_what_the_staging_path_writes(db):
    """The staging path (what upsert_candle_batch always was) is the reference, batch after batch."""
    rng = random.Random(15)
    for _ in range(25):
        batch = {}
        for instrument in rng.sample((1, 2, 3), rng.randint(1, 3)):
            start = rng.randint(0, 30)
            for n in range(start, start + rng.randint(1, 12)):
                closed = rng.random() < 0.6
                batch[(instrument, n)] = bar(instrument, n, closed, price=rng.choice((100.0, 100.0, 101.0)))
        rows = list(batch.values())
        rng.shuffle(rows)
        with db.connect() as conn:
            expected_written = store._merge_candles(conn, TF, rows)
            expected = [row[:8] for row in conn.execute(text(STORED_SQL))]
            conn.rollback()
        with db.begin() as conn:
            assert upsert_candle_batch(conn, TF, rows) == expected_written
        assert stored(db) == expected


def test_the_direct_copy_is_what_copy_from_writes_in_binary(db, monkeypatch):
    copies = []
    real = bulk.copy_from

    def spy(conn, table, columns, data, binary=False):
        copies.append((table, binary))
        return real(conn, table, columns, data, binary=binary)
    monkeypatch.setattr(store, "copy_from", spy)
    write(db, [bar(1, 0)])
    assert copies == [("candles", True)]
