"""Why a whole file is refused (nothing written): one error class the CLI maps to exit 2 and the API to 400."""

from __future__ import annotations

__all__ = ["ImportRefused"]


class ImportRefused(ValueError):
    """The file as a whole cannot be imported: not CSV or Parquet, empty, an unknown layout, a wrong timeframe, ..."""
