"""What a candle file's first bytes say, checked as the importer checks them: its format and its column names.

The API reads only this much of an upload before it queues the import, so a file that is not CSV or
Parquet, is empty, or has no recognisable layout is a 400 at once; the ingest worker reads the whole
file with the same checks (services/ingest/files/formats.py).
"""

from __future__ import annotations

import csv
import io
import zlib

import pyarrow as pa
import pyarrow.parquet as pq

from services.core.imports import ImportRefused

__all__ = ["FORMATS", "SNIFF_BYTES", "file_format", "checked_text", "header_names", "head_columns"]

FORMATS = ("csv", "csv.gz", "parquet")
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 64 * 1024


def file_format(data: bytes) -> str:
    """csv.gz or parquet by their magic numbers; anything else must be CSV text. The content decides, not
    the name: a vendor's `.txt` export is CSV and a mislabelled `.csv` that is Parquet is Parquet."""
    if data[:2] == _GZIP_MAGIC:
        return "csv.gz"
    return "parquet" if data[:4] == _PARQUET_MAGIC else "csv"


def checked_text(data: bytes, name: str, whole: bool = True) -> bytes:
    """CSV bytes without Excel's UTF-8 mark; ImportRefused when empty or not text. `whole`: False when
    `data` is a file's first bytes only (a character cut at their end is then no binary content)."""
    data = data.removeprefix(_UTF8_BOM)  # Excel's "CSV UTF-8" starts with one; it is not part of the first name
    if not data or data.isspace():  # not data.strip(): that copies the whole file
        raise ImportRefused(f"{name}: the file is empty")
    head = data[:SNIFF_BYTES]
    try:
        # A multi-byte character cut at the sniff's end is not binary content.
        head.decode("utf-8") if whole and len(data) <= SNIFF_BYTES else head[:-3].decode("utf-8")
    except UnicodeDecodeError:
        raise ImportRefused(f"{name}: neither CSV (UTF-8 text) nor Parquet; formats: {', '.join(FORMATS)}") from None
    if b"\x00" in head:
        raise ImportRefused(f"{name}: neither CSV (it holds NUL bytes) nor Parquet; formats: {', '.join(FORMATS)}")
    return data


def header_names(data: bytes) -> list[str]:
    """The names in a CSV's first line, as Arrow reads them."""
    text = data[:SNIFF_BYTES].decode("utf-8", errors="replace")
    return next(csv.reader(io.StringIO(text)), [])


def head_columns(data: bytes, name: str) -> list[str]:
    """The file's column names from its first bytes (a Parquet file's from its schema); ImportRefused
    when its format or its text says it cannot be imported."""
    fmt = file_format(data)
    if fmt == "parquet":
        try:
            return pq.read_schema(pa.BufferReader(data)).names
        except (pa.ArrowException, OSError) as exc:
            raise ImportRefused(f"{name}: an unreadable Parquet file ({exc})") from None
    if fmt == "csv.gz":
        try:
            data = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16).decompress(data, SNIFF_BYTES)
        except zlib.error as exc:
            raise ImportRefused(f"{name}: a gzip file that does not decompress ({exc})") from None
        return header_names(checked_text(data, name, whole=len(data) < SNIFF_BYTES))
    return header_names(checked_text(data, name))
