"""The row checks over a whole file at once: symbols told apart, rows in any order, dates by every reader."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from services.core.imports import ImportOptions, ImportRefused
from services.core.timeparse import parse_instant_ms
from services.ingest.files.dates import parse_dates
from services.ingest.files.reading import parse_file

NOW = parse_instant_ms("2026-12-02T12:00Z")
HEADER = "Symbol,Date,Open,High,Low,Close,Volume"


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_interleaved_symbols_are_checked_each_on_its_own_rows():
    # The same dates in both symbols are no duplicates; MSFT's 11-24 twice with different closes is.
    data = _csv(HEADER, "MSFT,2026-11-24,2,3,2,3,11", "AAPL,2026-11-24,6,7,6,7,2", "MSFT,2026-11-23,1,2,1,2,10",
                "AAPL,2026-11-23,5,6,5,6,1", "MSFT,2026-11-24,2,3,2,2.5,11", "AAPL,2026-11-23,5,6,5,6,1",
                "AAPL,2026-11-25,6,5,6,7,2", "MSFT,2026-11-25,3,4,3,4,12")
    parsed = parse_file(data, "f.csv", ImportOptions("XNYS", "1d"), NOW)
    assert list(parsed.series) == ["MSFT", "AAPL"]  # in the order the file first names them
    assert parsed.rows_per_symbol == {"MSFT": 4, "AAPL": 4}
    msft, aapl = parsed.series["MSFT"], parsed.series["AAPL"]
    assert msft.ts.tolist() == [parse_instant_ms("2026-11-23"), parse_instant_ms("2026-11-25")]
    assert msft.prices[:, 3].tolist() == [2.0, 4.0]
    assert [(r.source_row, r.reason) for r in msft.rejected] == [(1, "duplicate_timestamp"),
                                                                 (5, "duplicate_timestamp")]
    assert msft.rejected[0].detail == "row 1: the same date in rows 1, 5 with different values"
    assert msft.repeats == 0
    assert aapl.ts.tolist() == [parse_instant_ms("2026-11-23"), parse_instant_ms("2026-11-24")]
    assert aapl.repeats == 1  # row 6 repeats row 4 exactly: stored once
    assert [(r.source_row, r.reason) for r in aapl.rejected] == [(7, "high_below_low")]
    assert aapl.rejected[0].raw == ["2026-11-25", "6", "5", "6", "7", "2"]


def test_the_first_symbol_whose_spacing_is_wrong_is_named():
    weekly = [f"WKLY,2026-{day},1,2,1,2,10" for day in ("11-02", "11-09", "11-16", "11-23")]
    daily = [f"MSFT,2026-11-{day},1,2,1,2,10" for day in (23, 24, 25)]
    with pytest.raises(ImportRefused, match=r"f\.csv WKLY: the dates are mostly 7d apart, not 1d"):
        parse_file(_csv(HEADER, *daily, *weekly), "f.csv", ImportOptions("XNYS", "1d"), NOW)
    hourly = ["BTC/USD,2026-11-23T10:00Z,1,2,1,2,1", "BTC/USD,2026-11-23T11:00Z,1,2,1,2,1"]
    days = ["ETH/USD,2026-11-23,1,2,1,2,1", "ETH/USD,2026-11-24,1,2,1,2,1"]
    with pytest.raises(ImportRefused, match=r"f\.csv BTC/USD: bars 1h apart are shorter than the timeframe 1d"):
        parse_file(_csv(HEADER, *days, *hourly), "f.csv", ImportOptions("kraken", "1d"), NOW)


def test_a_symbol_with_a_single_date_passes_the_spacing_check_beside_others():
    data = _csv(HEADER, "MSFT,2026-11-23,1,2,1,2,10", "AAPL,2026-11-23,1,2,1,2,10", "AAPL,2026-11-24,1,2,1,2,10")
    parsed = parse_file(data, "f.csv", ImportOptions("XNYS", "1d"), NOW)
    assert {symbol: len(s.ts) for symbol, s in parsed.series.items()} == {"MSFT": 1, "AAPL": 2}


def test_a_file_of_only_refused_rows_keeps_every_row_refused():
    data = _csv(HEADER, "MSFT,2026-11-23,1,0.5,1,2,10", "MSFT,2026-11-24,x,2,1,2,10")
    checked = parse_file(data, "f.csv", ImportOptions("XNYS", "1d"), NOW).series["MSFT"]
    assert len(checked.ts) == 0 and checked.prices.shape == (0, 5)
    assert [(r.source_row, r.reason) for r in checked.rejected] == [(1, "high_below_low"), (2, "malformed")]


@pytest.mark.parametrize(("cells", "expected"), [
    (["2026-11-23", "2026-11-24 16:00"], ["2026-11-23T00:00Z", "2026-11-24T16:00Z"]),  # naive: UTC
    (["2026-11-23T16:00:00-05:00", " 2026-11-24T16:00:00Z "], ["2026-11-23T21:00Z", "2026-11-24T16:00Z"]),
    (["2026-11-23", "11/24/2026"], ["2026-11-23T00:00Z", None]),  # mixed spellings: the most-read one wins
    (["2026-11-23", ""], ["2026-11-23T00:00Z", None]),  # a blank cell is that row's unreadable date
    (["2026-11-23 16:00:00.5", "2026-11-24"], ["2026-11-23T16:00:00.5Z", "2026-11-24T00:00Z"]),
])
def test_text_dates_read_the_same_whichever_reader_takes_them(cells, expected):
    ms, ok = parse_dates(pa.array(cells, pa.string()))
    got = [int(value) if read else None for value, read in zip(ms.tolist(), ok.tolist(), strict=True)]
    assert got == [parse_instant_ms(e) if e else None for e in expected]
    assert ms.dtype == np.int64
