"""copy_upsert against real Postgres: inserts, idempotent rewrites, selective updates and COPY's escaping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from services.core.store.bulk import copy_upsert

pytestmark = pytest.mark.integration

COLUMNS = ("k", "label", "price", "closed", "payload", "ts")
KEYS = ("k",)
OLD = datetime(2000, 1, 1, tzinfo=UTC)
TS = datetime(2024, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def bulk_engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def conn(bulk_engine):
    """A session with its own temporary target table, so no shared table is touched."""
    with bulk_engine.connect() as conn:
        conn.execute(text("""CREATE TEMP TABLE bulk_rows (
            k integer PRIMARY KEY, label text, price double precision, closed boolean NOT NULL DEFAULT false,
            payload jsonb, ts timestamptz, updated_at timestamptz NOT NULL DEFAULT now())"""))
        conn.commit()
        yield conn
        conn.rollback()
        conn.execute(text("DROP TABLE bulk_rows"))
        conn.commit()


def write(conn, rows, **options) -> int:
    """One copy_upsert of `rows` into bulk_rows in its own committed transaction (now() moves on)."""
    written = copy_upsert(conn, "bulk_rows", COLUMNS, KEYS, rows, **options)
    conn.commit()
    return written


def stored(conn) -> list[tuple]:
    return [tuple(row) for row in conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM bulk_rows ORDER BY k"))]


def age_every_stamp(conn) -> None:
    conn.execute(text("UPDATE bulk_rows SET updated_at = :old"), {"old": OLD})
    conn.commit()


def touched(conn) -> list[int]:
    """Keys whose updated_at moved since age_every_stamp()."""
    keys = conn.execute(text("SELECT k FROM bulk_rows WHERE updated_at > :old ORDER BY k"), {"old": OLD})
    return list(keys.scalars())


def row(k: int, label: str = "x", price: float | None = 1.0, closed: bool = False, payload=None, ts=TS) -> tuple:
    return (k, label, price, closed, payload if payload is not None else {"n": k}, ts)


UPDATE = {"update": ("label", "price", "closed", "payload", "ts"), "stamp": "updated_at"}


def test_new_rows_are_inserted_and_counted(conn):
    rows = [row(1), row(2, price=2.5), row(3, closed=True)]
    assert write(conn, rows, **UPDATE) == 3
    assert stored(conn) == rows


@pytest.mark.parametrize("compare", [{}, {"approximate": ("price",)}, {"approximate": ("price",), "tolerance": 1e-9}],
                         ids=["exact", "approximate", "approximate-with-tolerance"])
def test_writing_the_same_rows_again_changes_nothing_and_returns_0(conn, compare):
    rows = [row(n, price=n / 3) for n in range(1, 6)]
    write(conn, rows, **UPDATE, **compare)
    age_every_stamp(conn)
    assert write(conn, rows, **UPDATE, **compare) == 0
    assert touched(conn) == [] and stored(conn) == rows


def test_only_the_row_whose_column_differs_is_updated(conn):
    write(conn, [row(1), row(2), row(3)], **UPDATE)
    age_every_stamp(conn)
    assert write(conn, [row(1), row(2, label="changed"), row(3)], **UPDATE) == 1
    assert touched(conn) == [2]
    assert stored(conn)[1] == row(2, label="changed")


def test_a_mix_of_new_changed_and_equal_rows_counts_the_new_and_the_changed(conn):
    write(conn, [row(1), row(2)], **UPDATE)
    assert write(conn, [row(1), row(2, price=9.0), row(3)], **UPDATE) == 2


def test_columns_outside_update_are_never_overwritten(conn):
    write(conn, [row(1, label="first")], update=("price",))
    assert write(conn, [row(1, label="second")], update=("price",)) == 0
    assert write(conn, [row(1, label="second", price=2.0)], update=("price",)) == 1
    assert stored(conn) == [row(1, label="first", price=2.0)]


def test_without_update_columns_existing_rows_stay_and_only_new_ones_count(conn):
    write(conn, [row(1, label="first")])
    assert write(conn, [row(1, label="second"), row(2)]) == 1
    assert [r[1] for r in stored(conn)] == ["first", "x"]


def test_update_where_keeps_rows_it_excludes(conn):
    # How candles are written: a closed bar is never reopened or rewritten.
    write(conn, [row(1, closed=True), row(2, closed=False)], **UPDATE)
    changed = [row(1, price=5.0, closed=False), row(2, price=5.0, closed=True)]
    assert write(conn, changed, **UPDATE, update_where="NOT t.closed") == 1
    assert stored(conn) == [row(1, closed=True), row(2, price=5.0, closed=True)]


def test_an_approximate_column_within_tolerance_is_not_a_change(conn):
    write(conn, [row(1, price=100.0)], **UPDATE)
    tolerant = {**UPDATE, "approximate": ("price",), "tolerance": 1e-9}
    assert write(conn, [row(1, price=100.0 * (1 + 1e-12))], **tolerant) == 0
    assert stored(conn)[0][2] == 100.0
    assert write(conn, [row(1, price=100.0 * (1 + 1e-6))], **tolerant) == 1
    assert stored(conn)[0][2] == 100.0 * (1 + 1e-6)


def test_without_tolerance_an_approximate_column_changes_on_any_difference(conn):
    write(conn, [row(1, price=100.0)], **UPDATE)
    assert write(conn, [row(1, price=100.0 * (1 + 1e-12))], **UPDATE, approximate=("price",)) == 1


def test_scale_sets_the_tolerance_floor_near_zero(conn):
    write(conn, [row(1, price=0.0)], **UPDATE)
    near_zero = [row(1, price=1e-12)]
    assert write(conn, near_zero, **UPDATE, approximate=("price",), tolerance=1e-9, scale=1.0) == 0
    assert write(conn, near_zero, **UPDATE, approximate=("price",), tolerance=1e-9) == 1


def test_an_approximate_column_going_to_or_from_null_is_a_change(conn):
    tolerant = {**UPDATE, "approximate": ("price",), "tolerance": 1e-9}
    write(conn, [row(1, price=None), row(2, price=5.0), row(3, price=None)], **tolerant)
    assert write(conn, [row(1, price=5.0), row(2, price=None), row(3, price=None)], **tolerant) == 2
    assert [r[2] for r in stored(conn)] == [5.0, None, None]


def test_an_exact_column_going_to_or_from_null_is_a_change(conn):
    write(conn, [row(1, label=None), row(2, label="set"), row(3, label=None)], **UPDATE)
    assert write(conn, [row(1, label="set"), row(2, label=None), row(3, label=None)], **UPDATE) == 2
    assert [r[1] for r in stored(conn)] == ["set", None, None]


def test_none_and_nan_are_stored_as_null_and_rewriting_them_changes_nothing(conn):
    rows = [(1, None, float("nan"), False, None, None), (2, None, None, True, None, None)]
    assert write(conn, rows, **UPDATE) == 2
    assert stored(conn) == [(1, None, None, False, None, None), (2, None, None, True, None, None)]
    assert write(conn, rows, **UPDATE) == 0


@pytest.mark.parametrize("label", [
    "tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "\\t is not a tab", "trailing\\",
    "\t\n\\\r", "ünïcødé ₿", "", "a 'quote' and \"double\"",
])
def test_strings_with_copy_control_characters_round_trip(conn, label):
    write(conn, [row(1, label=label, payload={"label": label})], **UPDATE)
    assert stored(conn)[0][1] == label
    assert stored(conn)[0][4] == {"label": label}
    assert write(conn, [row(1, label=label, payload={"label": label})], **UPDATE) == 0


def test_floats_keep_every_bit_and_timestamps_their_instant(conn):
    prices = [0.1 + 0.2, 1e-300, 123456789.12345678, -0.0, 2.0**53 + 2]
    ts = datetime(2024, 3, 1, 12, 34, 56, 789012, tzinfo=UTC)
    write(conn, [row(n, price=p, ts=ts) for n, p in enumerate(prices)], **UPDATE)
    assert [r[2] for r in stored(conn)] == prices
    assert {r[5] for r in stored(conn)} == {ts}


def test_empty_input_returns_0_without_running_any_sql(conn):
    assert copy_upsert(conn, "no_such_table", COLUMNS, KEYS, [], **UPDATE) == 0
    assert copy_upsert(conn, "bulk_rows", COLUMNS, KEYS, iter(()), **UPDATE) == 0
    assert stored(conn) == []


def test_rows_may_come_from_a_generator_and_two_writes_may_share_a_transaction(conn):
    assert copy_upsert(conn, "bulk_rows", COLUMNS, KEYS, (row(n) for n in range(3)), **UPDATE) == 3
    assert copy_upsert(conn, "bulk_rows", COLUMNS, KEYS, (row(n) for n in range(2, 5)), **UPDATE) == 2
    conn.commit()
    assert [r[0] for r in stored(conn)] == [0, 1, 2, 3, 4]
