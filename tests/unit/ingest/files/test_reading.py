"""Reading candle files: formats, layouts, dates, numbers, sessions on real calendars, and the row checks."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.core.imports import ImportOptions, ImportRefused
from services.core.timeparse import parse_instant_ms
from services.ingest.files.reading import parse_file

FIXTURES = Path(__file__).resolve().parents[3] / "data" / "imports"
NOW = parse_instant_ms("2026-12-02T12:00Z")
DAY = 86_400_000
XNYS_1D = ImportOptions("XNYS", "1d", "MSFT")


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _dates(parsed, symbol="MSFT") -> list[str]:
    from services.core.timeparse import ms_to_datetime

    return [ms_to_datetime(int(ts)).date().isoformat() for ts in parsed.series[symbol].ts]


def _reasons(parsed, symbol="MSFT") -> dict[int, str]:
    return {r.source_row: r.reason for r in parsed.series[symbol].rejected}


def test_the_vendor_file_with_its_quirks_is_read_and_its_bad_rows_named_by_row():
    parsed = parse_file((FIXTURES / "msft_vendor_thanksgiving_2026.csv").read_bytes(), "msft.csv", XNYS_1D, NOW)
    assert parsed.format == "csv" and parsed.rows_read == 10
    assert parsed.layout.ignored == ("Adj Close",)
    assert _dates(parsed) == ["2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]
    assert _reasons(parsed) == {5: "non_session", 7: "non_session", 8: "high_below_low", 9: "negative_volume",
                                10: "unparsable_date"}
    first = parsed.series["MSFT"].prices[0].tolist()
    assert first == [512.10, 518.40, 509.95, 517.03, 21_304_500.0]  # thousands separators read
    assert parsed.series["MSFT"].prices[2][1] == 1024.0
    rejected = {r.source_row: r for r in parsed.series["MSFT"].rejected}
    assert rejected[5].raw == ["2026-11-26", "523.10", "523.10", "523.10", "523.10", "0"]
    assert rejected[5].detail.startswith("row 5: ") and rejected[5].source_file == "msft.csv"


@pytest.mark.parametrize("header", ["Date,Open,High,Low,Close,Volume", "date,open,high,low,close,volume",
                                    "DATE,OPEN,HIGH,LOW,CLOSE,VOLUME", "Date,Open,High,Low,Close,Volume,OpenInt",
                                    "Date,Open,High,Low,Close,Volume,Open Interest"])
def test_the_common_layouts_are_recognised_in_any_case(header):
    extra = ",7" if header.count(",") == 6 else ""
    parsed = parse_file(_csv(header, f"2026-11-23,1,2,1,2,10{extra}", f"2026-11-24,2,3,2,3,11{extra}"),
                        "f.csv", XNYS_1D, NOW)
    assert _dates(parsed) == ["2026-11-23", "2026-11-24"]


@pytest.mark.parametrize(("first", "second"), [
    ("2026-11-23", "2026-11-24"), ("11/23/2026", "11/24/2026"), ("20261123", "20261124"),
    ("1795392000", "1795478400"), ("1795392000000", "1795478400000"),
    ("2026-11-23T16:00:00-05:00", "2026-11-24T16:00:00-05:00"),  # New York's close: that session
])
def test_each_date_spelling_names_the_session(first, second):
    parsed = parse_file(_csv("Date,Open,High,Low,Close,Volume", f"{first},1,2,1,2,10", f"{second},2,3,2,3,11"),
                        "f.csv", XNYS_1D, NOW)
    assert _dates(parsed) == ["2026-11-23", "2026-11-24"]


def test_a_shanghai_midnight_is_that_days_session_and_the_october_holiday_week_is_refused():
    days = ["2026-09-29", "2026-09-30", "2026-10-01", "2026-10-02", "2026-10-05", "2026-10-08", "2026-10-09"]
    lines = [f"{day}T00:00:00+08:00,1,2,1,2,10" for day in days]  # 16:00 UTC the day before
    parsed = parse_file(_csv("Datetime,Open,High,Low,Close,Volume", *lines), "a.csv",
                        ImportOptions("XSHG", "1d", "600519"), NOW)
    assert _dates(parsed, "600519") == ["2026-09-29", "2026-09-30", "2026-10-08", "2026-10-09"]
    assert _reasons(parsed, "600519") == {3: "non_session", 4: "non_session", 5: "non_session"}


def test_columns_and_a_date_format_name_what_is_not_recognised():
    data = _csv("Trade Date;Open;High;Low;Last;Volume".replace(";", ","), "23.11.2026,1,2,1,2,10",
                "24.11.2026,2,3,2,3,11")
    with pytest.raises(ImportRefused, match="no date, close column"):
        parse_file(data, "f.csv", XNYS_1D, NOW)
    options = ImportOptions("XNYS", "1d", "MSFT", {"date": "Trade Date", "close": "Last"}, "%d.%m.%Y")
    assert _dates(parse_file(data, "f.csv", options, NOW)) == ["2026-11-23", "2026-11-24"]


def test_a_symbol_column_splits_the_file_into_instruments():
    data = _csv("Symbol,Date,Open,High,Low,Close,Volume", "MSFT,2026-11-23,1,2,1,2,10", "AAPL,2026-11-23,5,6,5,6,1",
                "MSFT,2026-11-24,2,3,2,3,11", "AAPL,2026-11-24,6,7,6,7,2")
    parsed = parse_file(data, "f.csv", ImportOptions("XNYS", "1d"), NOW)
    assert sorted(parsed.series) == ["AAPL", "MSFT"]
    assert _dates(parsed, "AAPL") == ["2026-11-23", "2026-11-24"]
    assert parsed.series["AAPL"].prices[:, 3].tolist() == [6.0, 7.0]
    with pytest.raises(ImportRefused, match="leave --symbol out"):
        parse_file(data, "f.csv", XNYS_1D, NOW)


def test_duplicates_identical_are_kept_once_and_conflicting_ones_all_refused():
    data = _csv("Date,Open,High,Low,Close,Volume", "2026-11-23,1,2,1,2,10", "2026-11-23,1,2,1,2,10",
                "2026-11-24,2,3,2,3,11", "2026-11-24,2,3,2,2.5,11", "2026-11-25,2,3,2,3,11")
    checked = parse_file(data, "f.csv", XNYS_1D, NOW).series["MSFT"]
    assert checked.repeats == 1 and len(checked.ts) == 2
    assert {r.source_row: r.reason for r in checked.rejected} == {3: "duplicate_timestamp", 4: "duplicate_timestamp"}


def test_gzipped_csv_and_parquet_read_like_csv():
    data = _csv("Date,Open,High,Low,Close,Volume", "2026-11-23,1,2,1,2,10", "2026-11-24,2,3,2,3,11")
    assert parse_file(gzip.compress(data), "f.csv.gz", XNYS_1D, NOW).format == "csv.gz"
    table = pa.table({"date": pa.array([parse_instant_ms("2026-11-23"), parse_instant_ms("2026-11-24")],
                                       pa.timestamp("ms", tz="UTC")),
                      "open": [1.0, 2.0], "high": [2.0, 3.0], "low": [1.0, 2.0], "close": [2.0, 3.0],
                      "volume": pa.array([10, 11], pa.int64())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parsed = parse_file(sink.getvalue(), "f.parquet", XNYS_1D, NOW)
    assert parsed.format == "parquet" and _dates(parsed) == ["2026-11-23", "2026-11-24"]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"), (b"Date,Open,High,Low,Close,Volume\n", "empty"),
    (bytes(range(256)) * 4, "neither CSV"), (b"\x1f\x8bnot really gzip", "gzip"),
    (b"when,what\n2026-11-23,x\n", "unknown layout"),
])
def test_files_that_are_not_candles_are_refused(data, message):
    with pytest.raises(ImportRefused, match=message):
        parse_file(data, "f.csv", XNYS_1D, NOW)


def test_a_timeframe_not_matching_the_dates_spacing_is_refused():
    weekly = _csv("Date,Open,High,Low,Close,Volume", *(f"2026-{d},1,2,1,2,10" for d in
                                                       ("11-02", "11-09", "11-16", "11-23")))
    with pytest.raises(ImportRefused, match="mostly 7d apart, not 1d"):
        parse_file(weekly, "f.csv", XNYS_1D, NOW)
    with pytest.raises(ImportRefused, match="shorter than the timeframe 1d"):
        parse_file(_csv("Date,Open,High,Low,Close,Volume", "2026-11-23T10:00Z,1,2,1,2,1",
                        "2026-11-23T11:00Z,1,2,1,2,1"), "f.csv", ImportOptions("kraken", "1d", "BTC/USD"), NOW)


def test_an_unknown_exchange_and_a_malformed_symbol_are_refused_by_the_venue_rules():
    data = _csv("Date,Open,High,Low,Close,Volume", "2026-11-23,1,2,1,2,10")
    with pytest.raises(ValueError, match="unknown exchange 'XXXX'"):
        parse_file(data, "f.csv", ImportOptions("XXXX", "1d", "MSFT"), NOW)
    with pytest.raises(ValueError, match="malformed symbol 'msft'"):
        parse_file(data, "f.csv", ImportOptions("XNYS", "1d", "msft"), NOW)


def test_a_bar_starting_after_now_and_a_misaligned_intraday_bar_are_refused():
    data = _csv("Datetime,Open,High,Low,Close,Volume", "2026-12-02T10:00Z,1,2,1,2,1", "2026-12-02T11:00Z,1,2,1,2,1",
                "2026-12-02T11:30Z,1,2,1,2,1", "2026-12-02T13:00Z,1,2,1,2,1")
    with pytest.raises(ImportRefused, match="shorter"):
        parse_file(data, "f.csv", ImportOptions("kraken", "1h", "BTC/USD"), NOW)
    data = _csv("Datetime,Open,High,Low,Close,Volume", "2026-12-02T10:00Z,1,2,1,2,1", "2026-12-02T11:00Z,1,2,1,2,1",
                "2026-12-02T12:00Z,1,2,1,2,1", "2026-12-02T13:00Z,1,2,1,2,1")
    checked = parse_file(data, "f.csv", ImportOptions("kraken", "1h", "BTC/USD"), NOW).series["BTC/USD"]
    assert {r.source_row: r.reason for r in checked.rejected} == {4: "future_timestamp"}


def test_every_field_an_import_names_has_its_recognised_column_names():
    from services.core.file_layout import ALIASES
    from services.core.imports import FIELDS

    assert tuple(ALIASES) == FIELDS


@pytest.mark.parametrize(("text", "message"), [("date", "expected field=Column"), ("when=Day", "unknown field"),
                                              ("date=A,date=B", "given twice")])
def test_a_bad_column_mapping_is_refused_naming_the_problem(text, message):
    from services.core.imports import parse_column_mapping

    with pytest.raises(ValueError, match=message):
        parse_column_mapping(text)


def test_parquet_dates_and_nulls_are_read_and_refused_row_by_row():
    import datetime as dt

    table = pa.table({"Date": pa.array([dt.date(2026, 11, 23), dt.date(2026, 11, 24), None]),
                      "Open": [1.0, 2.0, 3.0], "High": [2.0, 3.0, 4.0], "Low": [1.0, 2.0, 3.0],
                      "Close": [2.0, 3.0, 3.5], "Volume": pa.array([10, None, 5])})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parsed = parse_file(sink.getvalue(), "f.parquet", XNYS_1D, NOW)
    assert _dates(parsed) == ["2026-11-23"]
    assert _reasons(parsed) == {2: "malformed", 3: "unparsable_date"}
    assert parsed.series["MSFT"].rejected[0].raw == ["2026-11-24", 2.0, 3.0, 2.0, 3.0, None]


def test_intraday_bars_of_a_calendar_venue_must_start_while_it_trades():
    # XNYS 2026-11-27 closes early at 13:00 New York (18:00 UTC); Thanksgiving is closed all day.
    starts = ["2026-11-25T20:30Z", "2026-11-26T15:00Z", "2026-11-27T14:30Z", "2026-11-27T17:30Z",
              "2026-11-27T18:00Z", "2026-11-27T18:30Z"]
    data = _csv("Datetime,Open,High,Low,Close,Volume", *(f"{ts},1,2,1,2,1" for ts in starts))
    checked = parse_file(data, "f.csv", ImportOptions("XNYS", "30m", "MSFT"), NOW).series["MSFT"]
    assert {r.source_row: r.reason for r in checked.rejected} == {2: "non_session", 5: "non_session",
                                                                  6: "non_session"}
    assert len(checked.ts) == 3


def test_a_shanghai_bar_in_the_lunch_break_is_refused():
    starts = ["2026-10-09T01:30Z", "2026-10-09T02:00Z", "2026-10-09T02:30Z", "2026-10-09T03:30Z",
              "2026-10-09T05:00Z", "2026-10-09T05:30Z"]
    data = _csv("Datetime,Open,High,Low,Close,Volume", *(f"{ts},1,2,1,2,1" for ts in starts))
    checked = parse_file(data, "f.csv", ImportOptions("XSHG", "30m", "600519"), NOW).series["600519"]
    assert {r.source_row: r.reason for r in checked.rejected} == {4: "non_session"}  # 11:30 Shanghai
