"""The OpenAPI entries of the universe routes (instruments and markets), merged into openapi.py's."""

from __future__ import annotations

from services.api.routes.instruments import MAX_TIMEFRAMES
from services.core.store.instruments import SOURCES

__all__ = ["INSTRUMENT_OPERATIONS", "INSTRUMENT_SCHEMAS"]

_STRING = {"type": "string"}
_TIMESTAMP = {"type": "string", "format": "date-time", "nullable": True}
_TIMEFRAMES = {"type": "array", "items": _STRING, "minItems": 1, "maxItems": MAX_TIMEFRAMES,
               "example": ["1h", "4h"]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _ref("Error")
_BAD_BODY = _json("The body is not JSON, or a field is unknown, null, of the wrong type or invalid (a symbol the "
                  "exchange does not list); `parameter` names it.", _ERROR)
_UNAVAILABLE = _json("Redis or Postgres is unavailable.", _ERROR)

INSTRUMENT_SCHEMAS = {
    "Instrument": {
        "type": "object",
        "required": ["id", "exchange", "symbol", "timeframes", "active", "source", "added_at"],
        "properties": {"id": {"type": "integer"}, "exchange": _STRING, "symbol": _STRING,
                       "timeframes": {"type": "array", "items": _STRING}, "active": {"type": "boolean"},
                       "source": {"type": "string", "enum": list(SOURCES),
                                  "description": "config (SYMBOLS at migrate), api, cli, market-sync, or ingest "
                                                 "(registered before the universe existed)"},
                       "added_at": _TIMESTAMP, "retired_at": _TIMESTAMP,
                       "market_gone_at": {**_TIMESTAMP, "description": "When the market sync found the exchange "
                                                                       "no longer lists it (it was retired then)"}},
    },
    "InstrumentAddition": {
        "type": "object", "required": ["symbol"], "additionalProperties": False,
        "properties": {"symbol": {"type": "string", "example": "SOL/USD",
                                  "description": "A market the exchange lists (GET /api/markets)"},
                       "timeframes": {**_TIMEFRAMES, "description": "Default: TIMEFRAMES"}},
    },
    "InstrumentChange": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {"active": {"type": "boolean", "description": "false retires it (its data stays)"},
                       "timeframes": {**_TIMEFRAMES, "description": "Replaces its timeframes"}},
    },
    "Market": {
        "type": "object",
        "properties": {"exchange": _STRING, "symbol": _STRING, "market_id": _STRING, "base": _STRING,
                       "quote": _STRING, "type": _STRING, "active": {"type": "boolean", "nullable": True},
                       "precision": {"type": "object"}, "first_seen_at": _TIMESTAMP, "last_seen_at": _TIMESTAMP,
                       "gone_at": {**_TIMESTAMP, "description": "When a sync first missed it"}},
    },
    "MarketList": {
        "type": "object", "required": ["exchange", "count", "total", "markets"],
        "properties": {"exchange": _STRING, "count": {"type": "integer"},
                       "total": {"type": "integer", "description": "Matching markets before the limit"},
                       "markets": {"type": "array", "items": _ref("Market")}},
    },
}

INSTRUMENT_OPERATIONS: dict[str, dict] = {
    "instruments.list_instruments": {
        "summary": "The instrument universe", "operationId": "listInstruments", "tags": ["data"],
        "responses": {"200": _json("Instruments, by exchange and symbol.",
                                   {"type": "object", "properties": {
                                       "count": {"type": "integer"},
                                       "instruments": {"type": "array", "items": _ref("Instrument")}}}),
                      "503": _UNAVAILABLE},
    },
    "instruments.add": {
        "summary": "Add an instrument", "operationId": "addInstrument", "tags": ["data"],
        "requestBody": {"required": True, **_json("The market to add.", _ref("InstrumentAddition"))},
        "responses": {"201": _json("Added, active; the next run without a symbol covers it.", _ref("Instrument")),
                      "400": _BAD_BODY,
                      "409": _json("Already in the universe, or the exchange's market list was never synced.",
                                   _ERROR),
                      "503": _UNAVAILABLE},
    },
    "instruments.change": {
        "summary": "Retire, re-activate or re-time an instrument", "operationId": "changeInstrument",
        "tags": ["data"],
        "requestBody": {"required": True, **_json("What to change.", _ref("InstrumentChange"))},
        "responses": {"200": _json("The instrument as it now stands.", _ref("Instrument")), "400": _BAD_BODY,
                      "404": _json("No such instrument.", _ERROR),
                      "409": _json("Re-activating a market the exchange no longer lists.", _ERROR),
                      "503": _UNAVAILABLE},
    },
    "instruments.list_markets": {
        "summary": "The exchange's market list", "operationId": "listMarkets", "tags": ["data"],
        "description": "As the last market sync (job markets-sync-daily) recorded it.",
        "responses": {"200": _json("Markets, by symbol.", _ref("MarketList")), "503": _UNAVAILABLE},
    },
}
