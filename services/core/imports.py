"""What an import is told (exchange, timeframe, symbol, column names, date format): one definition for the CLI, the
API and the ingest worker, checked the same way in each."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.core.timeframe import Timeframe
from services.core.venues import check_symbol, venue

__all__ = ["RUN_KIND", "FIELDS", "ImportRefused", "ImportOptions", "parse_column_mapping"]

# The pipeline_runs kind of an import (CLI and API alike).
RUN_KIND = "import"
# The fields a file's columns map to; `symbol` only in a file of several instruments.
FIELDS = ("date", "open", "high", "low", "close", "volume", "symbol")


class ImportRefused(ValueError):
    """The file as a whole cannot be imported (nothing written): not CSV or Parquet, empty, an unknown layout, a
    wrong timeframe, ...; the CLI maps it to exit 2, the API to 400 (what its first bytes show) or a FAILURE run."""


def parse_column_mapping(text: str) -> dict[str, str]:
    """`date=Trade Date,close=Last` as {field: column}; ValueError naming what is wrong."""
    mapping: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, column = part.partition("=")
        name = name.strip().lower()
        if not sep or not column.strip():
            raise ValueError(f"columns: expected field=Column Name, got {part.strip()[:60]!r}")
        if name not in FIELDS:
            raise ValueError(f"columns: unknown field {name[:40]!r}; fields: {', '.join(FIELDS)}")
        if name in mapping:
            raise ValueError(f"columns: {name} given twice")
        mapping[name] = column.strip()[:255]
    return mapping


@dataclass(frozen=True)
class ImportOptions:
    """Where the bars trade, their length, and what the file does not say itself."""

    exchange: str
    timeframe: str
    symbol: str | None = None                               # required unless the file has a symbol column
    columns: dict[str, str] = field(default_factory=dict)   # field → the file's column, over the recognition
    date_format: str | None = None                          # strptime format, over the recognised spellings

    def checked(self) -> ImportOptions:
        """Itself, or ValueError naming the bad option: an unknown exchange, a malformed timeframe or symbol."""
        venue(self.exchange)  # UnknownVenue: neither a ccxt id nor a known MIC
        Timeframe.parse(self.timeframe)
        if self.symbol is not None:
            check_symbol(self.exchange, self.symbol)
        unknown = set(self.columns) - set(FIELDS)
        if unknown:
            raise ValueError(f"columns: unknown field {sorted(unknown)[0][:40]!r}; fields: {', '.join(FIELDS)}")
        if self.date_format is not None and "%" not in self.date_format:
            raise ValueError(f"date_format {self.date_format[:40]!r} has no strptime directive, e.g. %d.%m.%Y")
        return self

    def as_dict(self) -> dict:
        """What an upload keeps of it (import_uploads.options)."""
        return {"exchange": self.exchange, "timeframe": self.timeframe, "symbol": self.symbol,
                "columns": dict(self.columns), "date_format": self.date_format}

    def scope(self, filename: str) -> dict:
        """The run's scope as GET /api/runs/<id> shows it."""
        shown = {"exchange": self.exchange, "timeframe": self.timeframe, "file": filename, "symbol": self.symbol,
                 "columns": self.columns or None, "date_format": self.date_format}
        return {name: value for name, value in shown.items() if value is not None}
