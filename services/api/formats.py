"""How a read route's rows leave the API: JSON (the default), or CSV for spreadsheets and pandas."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence

from flask import Response, jsonify

__all__ = ["FORMATS", "CSV_MEDIA_TYPE", "Listing", "respond", "csv_text", "attachment_name"]

CSV_MEDIA_TYPE = "text/csv"
# A file name keeps letters, digits, '.', '_' and '-': no quote, slash or space can reach the header.
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Listing:
    """What a read route found: its JSON body, and the rows under `key` with their `columns` in order."""

    def __init__(self, body: dict, key: str, columns: Sequence[str], name_parts: Sequence[str | None]) -> None:
        self.body, self.key, self.columns = body, key, tuple(columns)
        self.name_parts = (*name_parts, key)  # e.g. BTC/USD, 1h, candles → BTC-USD-1h-candles.csv

    @property
    def rows(self) -> list[Mapping[str, object]]:
        return self.body[self.key]


def _cell(value: object) -> object:
    # csv writes str(value): for a float that is its shortest repr, which reads back to the same double.
    if value is None:
        return ""
    if isinstance(value, bool):  # as JSON spells them; pandas reads both spellings as booleans
        return "true" if value else "false"
    if isinstance(value, dict | list):  # a signal's inputs: one cell of JSON text
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def csv_text(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A header row of `columns`, then one record per row; RFC 4180 quoting and CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # QUOTE_MINIMAL: quotes exactly the cells that need it
    writer.writerow(columns)
    writer.writerows([_cell(row[column]) for column in columns] for row in rows)
    return out.getvalue()


def attachment_name(parts: Sequence[str | None]) -> str:
    """`<part>-<part>-….csv` from the parts given, each cut down to characters safe in a header."""
    safe = (_UNSAFE_IN_NAME.sub("-", part).strip("-.") for part in parts if part)
    return "-".join(part for part in safe if part) + ".csv"


def _as_json(listing: Listing) -> Response:
    return jsonify(listing.body)


def _as_csv(listing: Listing) -> Response:
    response = Response(csv_text(listing.rows, listing.columns), content_type=f"{CSV_MEDIA_TYPE}; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{attachment_name(listing.name_parts)}"'
    return response


_RENDERERS: dict[str, Callable[[Listing], Response]] = {"json": _as_json, "csv": _as_csv}
FORMATS = tuple(_RENDERERS)


def respond(format_name: str, listing: Listing) -> Response:
    """The listing in the format the query asked for (one of FORMATS; the query model refused any other)."""
    return _RENDERERS[format_name](listing)
