"""Column layouts: which of a file's columns holds the date, open, high, low, close, volume and (maybe) the symbol."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.core.imports import ImportRefused

__all__ = ["ALIASES", "REQUIRED", "IGNORED", "Layout", "recognise_layout", "check_symbol_source"]

# Each field and the header names it is recognised by without options, compared in any case and
# with spaces, underscores and dashes removed ("Adj Close" → "adjclose").
ALIASES = {
    "date": ("date", "datetime", "timestamp", "time"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol"),
    "symbol": ("symbol", "ticker"),
}
REQUIRED = ("date", "open", "high", "low", "close", "volume")
# Read and left out on purpose (docs/ingest.md): a candle is the traded prices and volume. An
# adjusted close rewrites history at every split or dividend, so stored next to raw prices it
# would make a bar's close disagree with its own high and low; open interest has no column.
IGNORED = ("adjclose", "openint", "openinterest")
_FOLD = re.compile(r"[\s_\-]+")


def _folded(name: str) -> str:
    return _FOLD.sub("", name.strip().lower())


@dataclass(frozen=True)
class Layout:
    """field → the file's column name; the columns left out (known, e.g. Adj Close, or not)."""

    columns: dict[str, str]
    ignored: tuple[str, ...]

    @property
    def has_symbol(self) -> bool:
        return "symbol" in self.columns


def recognise_layout(names: list[str], mapping: dict[str, str] | None = None) -> Layout:
    """The layout of a file with these column names; `mapping` (field → column) overrides the recognition.

    ImportRefused names what is missing or ambiguous, and the columns the file has.
    """
    mapping = mapping or {}
    by_fold: dict[str, list[str]] = {}
    for name in names:
        by_fold.setdefault(_folded(name), []).append(name)
    columns: dict[str, str] = {}
    for field, column in mapping.items():
        matches = by_fold.get(_folded(column), [])
        if not matches:
            raise ImportRefused(f"--columns {field}={column}: no such column; the file has {_listing(names)}")
        columns[field] = matches[0]
    for field, aliases in ALIASES.items():
        if field in columns:
            continue
        found = [name for alias in aliases for name in by_fold.get(alias, []) if name not in columns.values()]
        if len(found) > 1:
            raise ImportRefused(f"ambiguous layout: {', '.join(map(repr, found))} could each be the {field}; "
                                f"say which with --columns {field}=<column>")
        if found:
            columns[field] = found[0]
    missing = [field for field in REQUIRED if field not in columns]
    if missing:
        raise ImportRefused(f"unknown layout: no {', '.join(missing)} column among {_listing(names)}; expected "
                            "Date,Open,High,Low,Close,Volume (any case), or name them with --columns "
                            "(e.g. --columns date=Trade Date,close=Last)")
    used = set(columns.values())
    return Layout(columns, tuple(name for name in names if name not in used))


def check_symbol_source(layout: Layout, symbol: str | None, name: str) -> None:
    """A file's symbol comes from its column or from the import's symbol, never both and never neither."""
    if not layout.has_symbol and symbol is None:
        raise ImportRefused(f"{name} has no symbol column: give --symbol (the API's symbol field)")
    if layout.has_symbol and symbol is not None:
        raise ImportRefused(f"{name} has a symbol column ({layout.columns['symbol']!r}): leave --symbol out")


def _listing(names: list[str]) -> str:
    shown = ", ".join(repr(n[:40]) for n in names[:12])
    return shown + (f" and {len(names) - 12} more" if len(names) > 12 else "") if names else "no columns"
