"""The import's two write paths against real Postgres: straight COPY for instruments it adds, the candle write path
for those already held; duplicates in the file and against stored rows, chunks spanning instruments."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from services.core.imports import ImportOptions
from services.core.store.instruments import insert_instrument
from services.core.timeparse import parse_instant_ms
from services.ingest.files import storing
from services.ingest.files.importing import record_import
from services.ingest.files.reading import parse_file
from services.ingest.store import upsert_candles

pytestmark = pytest.mark.integration

HEADER = "Symbol,Date,Open,High,Low,Close,Volume"
DAY = 86_400_000
OPTIONS = ImportOptions("XNYS", "1d")


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _import(engine, data: bytes, now_ms: int) -> tuple[dict, list[int]]:
    """Parse and store `data` in one transaction: {symbol: report}, and what the progress bar was told."""
    parsed = parse_file(data, "f.csv", OPTIONS, now_ms)
    moves: list[int] = []
    with engine.begin() as conn:
        reports = record_import(conn, str(uuid.uuid4()), parsed, OPTIONS, now_ms, moves.append)
    return {r.symbol: r for r in reports}, moves


def _candles(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT i.symbol, to_char(c.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), c.close, c.is_closed "
            "FROM candles c JOIN instruments i ON i.id = c.instrument_id ORDER BY 1, 2"))]


def _rejected(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT i.symbol, r.source_row, r.reason FROM rejected_candles r "
            "JOIN instruments i ON i.id = r.instrument_id ORDER BY 2"))]


# Two new tickers interleaved; MSFT's 11-24 twice with different closes, AAPL's 11-23 twice identically.
FILE = _csv(HEADER, "MSFT,2026-11-23,1,2,1,2,10", "AAPL,2026-11-23,5,6,5,6,1", "MSFT,2026-11-24,2,3,2,3,11",
            "AAPL,2026-11-23,5,6,5,6,1", "MSFT,2026-11-24,2,3,2,2.5,11", "AAPL,2026-11-24,6,7,6,7,2",
            "MSFT,2026-11-25,3,4,3,4,12", "AAPL,2026-11-25,6,5,6,7,2")
NOW = parse_instant_ms("2026-12-02T12:00Z")


def test_new_instruments_are_copied_in_chunks_across_them_with_duplicates_kept_by_reason(engine, monkeypatch):
    monkeypatch.setattr(storing, "CHUNK_ROWS", 3)  # 4 bars: a chunk holds both instruments' rows
    reports, moves = _import(engine, FILE, NOW)
    assert _candles(engine) == [("AAPL", "2026-11-23", 6.0, True), ("AAPL", "2026-11-24", 7.0, True),
                                ("MSFT", "2026-11-23", 2.0, True), ("MSFT", "2026-11-25", 4.0, True)]
    assert _rejected(engine) == [("MSFT", 3, "duplicate_timestamp"), ("MSFT", 5, "duplicate_timestamp"),
                                 ("AAPL", 8, "high_below_low")]
    assert {s: (r.added, r.stored, r.unchanged, r.repeats, r.rejected) for s, r in reports.items()} == {
        "MSFT": (True, 2, 0, 0, {"duplicate_timestamp": 2}), "AAPL": (True, 2, 0, 1, {"high_below_low": 1})}
    assert moves[:2] == [3, 1] and sum(moves) == 8  # every row of the file, chunk by chunk


def test_importing_again_goes_through_the_write_path_and_changes_nothing(engine):
    _import(engine, FILE, NOW)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT instrument_id, ts, close, updated_at FROM candles ORDER BY 1, 2")).all()
    reports, moves = _import(engine, FILE, NOW)
    assert {s: (r.added, r.stored, r.unchanged) for s, r in reports.items()} == {
        "MSFT": (False, 0, 2), "AAPL": (False, 0, 2)}
    assert sum(moves) == 8
    with engine.connect() as conn:
        assert conn.execute(text("SELECT instrument_id, ts, close, updated_at FROM candles ORDER BY 1, 2")).all() \
            == before
    assert len(_rejected(engine)) == 3  # the same refusals, stored once


def test_a_held_instrument_keeps_its_closed_bars_and_takes_a_changed_open_one_beside_a_new_instrument(engine):
    today = parse_instant_ms("2026-11-25")
    with engine.begin() as conn:
        msft = insert_instrument(conn, "XNYS", "MSFT", ["1d"], "cli")["id"]
        upsert_candles(conn, msft, "1d", [(today - DAY, 2, 3, 2, 9, 11, True),  # stored closed, other values
                                          (today, 3, 4, 3, 3.5, 12, False)])  # the bar still open
    # Now is within the 11-25 session: the file's 11-25 bar is still open, and changed.
    reports, _ = _import(engine, FILE, today + DAY // 2)
    # 11-24 is refused as a duplicate in the file, so the stored closed 11-24 (close 9) stays as it was.
    assert _candles(engine) == [("AAPL", "2026-11-23", 6.0, True), ("AAPL", "2026-11-24", 7.0, True),
                                ("MSFT", "2026-11-23", 2.0, True), ("MSFT", "2026-11-24", 9.0, True),
                                ("MSFT", "2026-11-25", 4.0, False)]
    assert {s: (r.added, r.stored, r.unchanged) for s, r in reports.items()} == {
        "MSFT": (False, 2, 0), "AAPL": (True, 2, 0)}


def test_a_held_instruments_stored_closed_bar_is_not_rewritten_by_a_file_disagreeing_with_it(engine):
    with engine.begin() as conn:
        aapl = insert_instrument(conn, "XNYS", "AAPL", ["1d"], "cli")["id"]
        upsert_candles(conn, aapl, "1d", [(parse_instant_ms("2026-11-23"), 5, 6, 5, 5.5, 1, True)])
    reports, _ = _import(engine, FILE, NOW)
    assert ("AAPL", "2026-11-23", 5.5, True) in _candles(engine)
    assert (reports["AAPL"].stored, reports["AAPL"].unchanged) == (1, 1)
