"""A file's bytes to checked series per symbol: format, layout, dates, numbers, sessions, spacing, row checks (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from services.core.file_layout import Layout, check_symbol_source, recognise_layout
from services.core.imports import ImportOptions, ImportRefused
from services.core.timeframe import Timeframe
from services.core.venues import check_symbol, trading_calendar
from services.ingest.files.checks import CheckedSeries, SeriesRows, check_series, check_spacing
from services.ingest.files.dates import parse_dates
from services.ingest.files.formats import read_table
from services.ingest.files.sessions import DAY_MS, session_dates, sessions_mask, trading_hours_mask

__all__ = ["ParsedFile", "parse_file", "PRICE_FIELDS"]

PRICE_FIELDS = ("open", "high", "low", "close", "volume")
# Thousands separators in quoted numbers ("1,234.50"): a decimal comma (1.234,50) is not supported.
_THOUSANDS = ","


@dataclass
class ParsedFile:
    """A file read and checked: its format and layout, and per symbol the rows to store and those refused."""

    name: str
    format: str
    layout: Layout
    rows_read: int
    series: dict[str, CheckedSeries]
    rows_per_symbol: dict[str, int]


def parse_file(data: bytes, name: str, options: ImportOptions, now_ms: int) -> ParsedFile:
    """Everything an import decides before it writes; ImportRefused (or ValueError) refuses the whole file."""
    tf = Timeframe.parse(options.checked().timeframe)
    table, fmt = read_table(data, name)
    layout = recognise_layout(table.column_names, options.columns)
    if table.num_rows == 0:
        raise ImportRefused(f"{name}: the file is empty (a header and no rows)")
    symbols = _symbols(table, layout, options, name)
    dates, date_ok = parse_dates(table.column(layout.columns["date"]), options.date_format)
    calendar = trading_calendar(options.exchange)
    session_ok = np.ones(table.num_rows, bool)
    if calendar is not None and tf.ms == DAY_MS:  # a daily bar of a calendar venue is its session's date
        dates = session_dates(dates, calendar.tz)
        session_ok = sessions_mask(dates, calendar) | ~date_ok
    elif calendar is not None:  # an intraday bar starts while the venue trades
        session_ok = trading_hours_mask(dates, calendar) | ~date_ok
    prices, numbers_ok = _prices(table, layout)
    codes, names = _codes(symbols, table.num_rows)
    rows = SeriesRows(np.arange(1, table.num_rows + 1), codes, names, dates, date_ok, prices, numbers_ok,
                      session_ok, cells=_cells(table, layout))
    check_spacing(rows, tf, name)
    return ParsedFile(name, fmt, layout, table.num_rows, check_series(rows, tf, now_ms, name), rows.counts())


def _symbols(table: pa.Table, layout: Layout, options: ImportOptions, name: str) -> pa.DictionaryArray | str:
    """The one symbol given, or each row's symbol from the file's column (every distinct one checked)."""
    check_symbol_source(layout, options.symbol, name)
    if not layout.has_symbol:
        return check_symbol(options.exchange, options.symbol)
    codes = pc.utf8_trim_whitespace(table.column(layout.columns["symbol"]).cast(pa.string())).combine_chunks()
    codes = codes.dictionary_encode()
    for position, symbol in enumerate(codes.dictionary.to_pylist()):
        try:
            check_symbol(options.exchange, symbol)
        except ValueError as exc:
            row = int(np.flatnonzero(codes.indices.to_numpy(zero_copy_only=False) == position)[0]) + 1
            raise ImportRefused(f"{name} row {row}: {exc}") from None
    return codes


def _codes(symbols: pa.DictionaryArray | str, n: int) -> tuple[np.ndarray, list[str]]:
    """Each row's symbol as an index into the symbols, listed in the order the file first names them."""
    if isinstance(symbols, str):
        return np.zeros(n, np.int64), [symbols]
    return symbols.indices.to_numpy(zero_copy_only=False).astype(np.int64), symbols.dictionary.to_pylist()


def _prices(table: pa.Table, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(n, 5) float64 of open, high, low, close, volume; and True where all five cells were numbers."""
    columns, oks = [], []
    for name in PRICE_FIELDS:
        values, ok = _numbers(table.column(layout.columns[name]))
        columns.append(values)
        oks.append(ok)
    return np.column_stack(columns), np.logical_and.reduce(oks)


def _numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_decimal(column.type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return values, ~np.isnan(values) | _is_nan_cell(column)
    text = column.cast(pa.string())
    try:  # the usual case, in one pass: plain numbers, no blanks around them, no thousands separators
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        return values, np.ones(len(values), bool)
    except pa.ArrowInvalid:
        pass
    text = pc.utf8_trim_whitespace(text)
    if pc.any(pc.match_substring(text, _THOUSANDS)).as_py():
        text = pc.replace_substring(text, _THOUSANDS, "")
    try:  # Arrow's own parser: every cell a number, the usual case
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        return values, np.ones(len(values), bool)
    except pa.ArrowInvalid:  # some cell is not: find which, row by row
        values = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False)), errors="coerce")
        values = values.astype("float64").to_numpy()
        return values, ~np.isnan(values)


def _is_nan_cell(column: pa.ChunkedArray) -> np.ndarray:
    """A typed NaN (not a null) is a number the checks refuse as non-finite, not an unreadable cell."""
    if not pa.types.is_floating(column.type):
        return np.zeros(len(column), bool)
    return column.is_valid().to_numpy(zero_copy_only=False)


def _cells(table: pa.Table, layout: Layout):
    """Row i's cells in the layout's field order, as read (what rejected_candles keeps as `raw`)."""
    names = [layout.columns[f] for f in ("date", *PRICE_FIELDS)]
    columns = [table.column(n) for n in names]

    def cells(i: int) -> list:
        return [_jsonable(column[i].as_py()) for column in columns]
    return cells


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    return str(value)
