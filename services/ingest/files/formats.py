"""Reading a file's bytes as a table: Parquet by its magic number, gzip by its own, anything else must be CSV text."""

from __future__ import annotations

import csv
import gzip
import io
import zlib

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from services.ingest.files.refusals import ImportRefused

__all__ = ["read_table", "FORMATS"]

FORMATS = ("csv", "csv.gz", "parquet")
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 64 * 1024


def read_table(data: bytes, name: str) -> tuple[pa.Table, str]:
    """The file's rows as a table of string columns (CSV) or typed ones (Parquet), and its format.

    The content decides, not the name: a vendor's `.txt` export is read as CSV and a
    mislabelled `.csv` that is Parquet as Parquet.
    """
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportRefused(f"{name}: a gzip file that does not decompress ({exc})") from None
        return _read_csv(data, name), "csv.gz"
    if data[:4] == _PARQUET_MAGIC:
        try:
            return pq.read_table(io.BytesIO(data)), "parquet"
        except (pa.ArrowException, OSError) as exc:
            raise ImportRefused(f"{name}: an unreadable Parquet file ({exc})") from None
    return _read_csv(data, name), "csv"


def _read_csv(data: bytes, name: str) -> pa.Table:
    data = data.removeprefix(_UTF8_BOM)  # Excel's "CSV UTF-8" starts with one; it is not part of the first name
    if not data or data.isspace():  # not data.strip(): that copies the whole file
        raise ImportRefused(f"{name}: the file is empty")
    head = data[:_SNIFF_BYTES]
    try:
        # A multi-byte character cut at the sniff's end is not binary content.
        head.decode("utf-8") if len(data) <= _SNIFF_BYTES else head[:-3].decode("utf-8")
    except UnicodeDecodeError:
        raise ImportRefused(f"{name}: neither CSV (UTF-8 text) nor Parquet; formats: {', '.join(FORMATS)}") from None
    if b"\x00" in head:
        raise ImportRefused(f"{name}: neither CSV (it holds NUL bytes) nor Parquet; formats: {', '.join(FORMATS)}")
    # Every column as text: quoted numbers with thousands separators and mixed date spellings are
    # parsed by the layout's own rules, not guessed per column by Arrow's type inference.
    names = _header_names(head.decode("utf-8", errors="replace"))
    try:
        return pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        raise ImportRefused(f"{name}: not readable as CSV ({str(exc).splitlines()[0]})") from None


def _header_names(text: str) -> list[str]:
    """The names in the first line, as Arrow will read them."""
    first = next(csv.reader(io.StringIO(text)), [])
    return first
