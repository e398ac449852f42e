"""Reading a file's bytes as a table: Parquet by its magic number, gzip by its own, anything else must be CSV text."""

from __future__ import annotations

import gzip
import io
import zlib

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from services.core.file_head import FORMATS, checked_text, file_format, header_names
from services.core.imports import ImportRefused

__all__ = ["read_table", "FORMATS"]


def read_table(data: bytes, name: str) -> tuple[pa.Table, str]:
    """The file's rows as a table of string columns (CSV) or typed ones (Parquet), and its format
    (decided by the content, services/core/file_head.py)."""
    fmt = file_format(data)
    if fmt == "csv.gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportRefused(f"{name}: a gzip file that does not decompress ({exc})") from None
    elif fmt == "parquet":
        try:
            return pq.read_table(io.BytesIO(data)), fmt
        except (pa.ArrowException, OSError) as exc:
            raise ImportRefused(f"{name}: an unreadable Parquet file ({exc})") from None
    return _read_csv(data, name), fmt


def _read_csv(data: bytes, name: str) -> pa.Table:
    data = checked_text(data, name)
    # Every column as text: quoted numbers with thousands separators and mixed date spellings are
    # parsed by the layout's own rules, not guessed per column by Arrow's type inference.
    names = header_names(data)
    try:
        return pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        raise ImportRefused(f"{name}: not readable as CSV ({str(exc).splitlines()[0]})") from None
