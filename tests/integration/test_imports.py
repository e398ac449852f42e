"""`candleflow import` against real Postgres: what a file stores, what it refuses, and that a second import changes
nothing."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from services.core.store.instruments import insert_instrument

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "candleflow")
VENDOR_FILE = Path(__file__).resolve().parents[1] / "data" / "imports" / "msft_vendor_thanksgiving_2026.csv"
HEADER = "Date,Open,High,Low,Close,Volume"


@pytest.fixture()
def run_cli(engine, database_url, redis_url):
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, "import", *args], env=env, capture_output=True, text=True, timeout=120)
    return run


def _table(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def _everything(engine) -> dict[str, list[tuple]]:
    return {
        "candles": _table(engine, "SELECT instrument_id, timeframe, ts, open, high, low, close, volume, is_closed, "
                                  "updated_at FROM candles ORDER BY 1, 2, 3"),
        "rejected": _table(engine, "SELECT instrument_id, source_file, source_row, reason, raw, rejected_at "
                                   "FROM rejected_candles ORDER BY source_row"),
        "instruments": _table(engine, "SELECT id, exchange, symbol, timeframes, source FROM instruments ORDER BY id"),
    }


def test_the_vendor_file_stores_its_sessions_and_keeps_each_bad_row_with_its_number(run_cli, engine):
    result = run_cli(str(VENDOR_FILE), "--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d")
    assert result.returncode == 0, result.stderr
    assert ("MSFT 1d on XNYS: 10 rows read, 5 stored, 0 unchanged, 0 repeated, 5 rejected (high_below_low 1, "
            "negative_volume 1, non_session 2, unparsable_date 1); added to the universe") in result.stdout
    assert "columns left out: Adj Close" in result.stdout
    stored = _table(engine, "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), close, volume, is_closed "
                            "FROM candles ORDER BY ts")
    assert stored == [("2026-11-20 00:00", 517.03, 21_304_500.0, True),
                      ("2026-11-23 00:00", 519.88, 18_950_200.0, True),
                      ("2026-11-24 00:00", 522.45, 19_411_000.0, True),
                      ("2026-11-25 00:00", 523.10, 15_002_300.0, True),
                      ("2026-11-27 00:00", 525.60, 8_120_900.0, True)]  # the half day, at its session date
    rejected = _table(engine, "SELECT source_file, source_row, reason FROM rejected_candles ORDER BY source_row")
    assert rejected == [("msft_vendor_thanksgiving_2026.csv", 5, "non_session"),
                        ("msft_vendor_thanksgiving_2026.csv", 7, "non_session"),
                        ("msft_vendor_thanksgiving_2026.csv", 8, "high_below_low"),
                        ("msft_vendor_thanksgiving_2026.csv", 9, "negative_volume"),
                        ("msft_vendor_thanksgiving_2026.csv", 10, "unparsable_date")]
    assert _table(engine, "SELECT exchange, symbol, timeframes, source, active FROM instruments") == [
        ("XNYS", "MSFT", ["1d"], "import", True)]
    ((kind, state, scope, stages),) = _table(engine, "SELECT kind, state, scope, stages FROM pipeline_runs")
    assert (kind, state) == ("import", "SUCCESS")
    assert scope == {"exchange": "XNYS", "timeframe": "1d", "file": VENDOR_FILE.name, "symbol": "MSFT"}
    (entry,) = stages["MSFT 1d"]
    assert entry["rows_read"] == 10 and entry["stored"] == 5 and entry["rejected"] == 5
    assert entry["rejected_by_reason"] == {"high_below_low": 1, "negative_volume": 1, "non_session": 2,
                                           "unparsable_date": 1}


def test_importing_the_same_file_twice_changes_nothing(run_cli, engine):
    args = (str(VENDOR_FILE), "--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d")
    assert run_cli(*args).returncode == 0
    before = _everything(engine)
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "10 rows read, 0 stored, 5 unchanged, 0 repeated, 5 rejected" in again.stdout
    assert "added to the universe" not in again.stdout
    assert _everything(engine) == before


def test_a_multi_symbol_gzipped_file_needs_no_symbol_and_shows_a_progress_bar(run_cli, engine, tmp_path):
    lines = [f"Ticker,{HEADER}"] + [f"{symbol},2026-11-{day},1,2,1,{close},100" for day in (23, 24, 25)
                                    for symbol, close in (("MSFT", 1.5), ("BRK.B", 1.25))]
    path = tmp_path / "two.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    result = run_cli(str(path), "--exchange", "XNYS", "--timeframe", "1d", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "csv.gz"
    assert {i["symbol"]: i["stored"] for i in report["instruments"]} == {"BRK.B": 3, "MSFT": 3}
    assert _table(engine, "SELECT i.symbol, count(*), max(c.close) FROM candles c JOIN instruments i "
                          "ON i.id = c.instrument_id GROUP BY 1 ORDER BY 1") == [("BRK.B", 3, 1.25), ("MSFT", 3, 1.5)]
    shown = run_cli(str(path), "--exchange", "XNYS", "--timeframe", "1d")
    assert "row" in shown.stderr and "100%" in shown.stderr  # tqdm draws on stderr


def _write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(("content", "args", "message"), [
    (b"when,what\n2026-11-23,1\n", ("--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d"),
     "unknown layout: no date, open, high, low, close, volume column"),
    (b"", ("--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d"), "the file is empty"),
    (bytes(range(256)) * 8, ("--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d"), "neither CSV"),
    (f"{HEADER}\n2026-11-02,1,2,1,2,1\n2026-11-09,1,2,1,2,1\n2026-11-16,1,2,1,2,1\n".encode(),
     ("--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d"), "mostly 7d apart, not 1d"),
    (f"{HEADER}\n2026-11-23,1,2,1,2,1\n".encode(), ("--symbol", "MSFT", "--exchange", "NYSE", "--timeframe", "1d"),
     "unknown exchange 'NYSE'"),
    (f"{HEADER}\n2026-11-23,1,2,1,2,1\n".encode(), ("--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1w"),
     "malformed timeframe"),
    (f"{HEADER}\n2026-11-23,1,2,1,2,1\n".encode(), ("--exchange", "XNYS", "--timeframe", "1d"), "give --symbol"),
])
def test_a_refused_file_exits_2_with_the_reason_and_writes_nothing(run_cli, engine, tmp_path, content, args, message):
    result = run_cli(_write(tmp_path, "f.csv", content), *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert _everything(engine) == {"candles": [], "rejected": [], "instruments": []}
    assert _table(engine, "SELECT count(*) FROM pipeline_runs") == [(0,)]


def test_a_timeframe_other_than_the_instruments_is_refused_and_nothing_written(run_cli, engine, tmp_path):
    with engine.begin() as conn:
        insert_instrument(conn, "XNYS", "MSFT", ["1h"], "cli")
    before = _everything(engine)
    result = run_cli(str(VENDOR_FILE), "--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d")
    assert result.returncode == 2
    assert "MSFT on XNYS is kept in 1h, not 1d" in result.stderr
    assert _everything(engine) == before
    assert _table(engine, "SELECT count(*) FROM pipeline_runs") == [(0,)]


def test_several_files_are_all_checked_before_the_first_is_written(run_cli, engine, tmp_path):
    good = _write(tmp_path, "good.csv", f"{HEADER}\n2026-11-23,1,2,1,2,1\n2026-11-24,1,2,1,2,1\n".encode())
    weekly = _write(tmp_path, "weekly.csv", f"{HEADER}\n2026-11-02,1,2,1,2,1\n2026-11-09,1,2,1,2,1\n".encode())
    result = run_cli(good, weekly, "--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d")
    assert result.returncode == 2 and "weekly.csv MSFT: the dates are mostly 7d apart" in result.stderr
    assert _everything(engine) == {"candles": [], "rejected": [], "instruments": []}


def test_two_rows_with_unreadable_dates_are_both_kept(run_cli, engine, tmp_path):
    content = f"{HEADER}\n2026-11-23,1,2,1,2,1\nsoon,1,2,1,2,1\n2026-11-24,1,2,1,2,1\nlater,1,2,1,2,1\n".encode()
    result = run_cli(_write(tmp_path, "f.csv", content), "--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d")
    assert result.returncode == 0, result.stderr
    assert _table(engine, "SELECT source_row, raw_ts, reason FROM rejected_candles ORDER BY source_row") == [
        (2, None, "unparsable_date"), (4, None, "unparsable_date")]


def test_run_queues_the_imported_instruments_analysis_on_their_venue(run_cli, engine, redis_url):
    import base64

    import redis

    from tests.utils.broker import queued_messages

    result = run_cli(str(VENDOR_FILE), "--symbol", "MSFT", "--exchange", "XNYS", "--timeframe", "1d", "--run",
                     "--json")
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout.strip().splitlines()[-1])
    assert started["scope"] == {"exchange": "XNYS", "symbol": "MSFT", "timeframe": "1d"}
    client = redis.Redis.from_url(redis_url)
    messages = [m for m in queued_messages(client, "pipeline") if m["headers"]["id"] == started["analysis_run_id"]]
    assert len(messages) == 1 and messages[0]["headers"]["task"] == "pipeline.start"
    args, _, _ = json.loads(base64.b64decode(messages[0]["body"]))
    assert args == ["all", started["scope"]]
    client.flushdb()
