"""The query parameters of every route, one model each: what a route accepts is what its OpenAPI entry says."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from services.api.formats import FORMATS
from services.api.query import QueryModel, pattern
from services.core.config import get_settings
from services.core.pipeline.runs import (
    KINDS,
    MAX_DELAY_S,
    RUN_KINDS,
    RUN_STATES,
    RunRequest,
    start_time,
    validate_request,
)
from services.core.pipeline.scopes import RELATIVE_LIMITS
from services.core.priority import DEFAULT_PRIORITY, PRIORITIES
from services.core.store.analysis_reads import INDICATOR_FIELDS
from services.core.timeframe import Timeframe
from services.core.timeparse import parse_instant
from services.core.venues import (  # either kind: the exchange, and so its rule, may be a default
    SYMBOL_RE,
    check_symbol,
    venue,
)

__all__ = ["TriggerQuery", "RunStatusQuery", "InstrumentsQuery", "MarketsQuery", "CandlesQuery", "SignalsQuery",
           "RunsQuery", "ScheduleHistoryQuery", "SeriesQuery", "IndicatorsQuery", "PatternsQuery", "LevelsQuery",
           "Format"]

# (default, maximum) rows per response: enough for a chart, small enough to stay one quick query.
CANDLE_LIMIT = (500, 5000)
SIGNAL_LIMIT = (100, 5000)
RUN_LIMIT = (50, 500)
MARKET_LIMIT = (1000, 10000)
SCHEDULE_HISTORY_LIMIT = (100, 1000)
INDICATOR_LIMIT = (500, 5000)
PATTERN_LIMIT = (500, 5000)
LEVEL_LIMIT = (100, 1000)  # a series keeps tens of levels, not thousands

_INSTANT_SCHEMA = {"type": "string", "description": "ISO 8601 (UTC unless an offset is given) or epoch milliseconds",
                   "examples": ["2024-01-31T00:00:00Z"]}
_DIGITS = frozenset("0123456789")
# No timeframe or instant is longer; a longer value is cut (and so stays invalid) before core
# parses it, so its error message quotes 40 characters back, not 5000.
_LONGEST = 40


def _quotable(value: str) -> str:
    return value if len(value) <= _LONGEST else f"{value[:_LONGEST]}…"


def _timeframe(value: str) -> str:
    Timeframe.parse(_quotable(value))  # its ValueError already says what a timeframe looks like
    return value


def _exchange(value: str) -> str:
    venue(_quotable(value))  # UnknownVenue (a ValueError) names both kinds it could have been
    return value


def _instant(value: str) -> datetime:
    try:
        return parse_instant(_quotable(value))
    except (OverflowError, OSError):  # epoch ms or offsets beyond what a datetime can hold
        raise ValueError(f"date {_quotable(value)!r} is out of range") from None


def _whole_number(value: Any) -> Any:
    # Plain digits only: pydantic alone would take "1.0", " 5" or "1_000" as integers.
    if isinstance(value, str) and not (0 < len(value) <= 9 and set(value) <= _DIGITS):
        raise PydanticCustomError("int_parsing", "not a whole number")
    return value


def _true_or_false(value: Any) -> Any:
    # Exactly true/false (any case): pydantic alone would also take yes, on, 1 and t.
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise PydanticCustomError("bool_parsing", "not true or false")
        return value.lower() == "true"
    return value


def _after_since(until: datetime | None, info: ValidationInfo) -> datetime | None:
    """A range's end must follow its start (a model's `since` field, absent when itself refused)."""
    since = info.data.get("since")
    if until is not None and since is not None and until <= since:
        raise ValueError("until must be after since")
    return until


def _fits_exchange(symbol: str | None, info: ValidationInfo) -> str | None:
    """A symbol must be of its exchange's kind (a model's `exchange` field before it, else EXCHANGE): a ticker
    on kraken, or BASE/QUOTE on XNYS, is a 400, not an empty answer."""
    if symbol is not None and "exchange" in info.data:  # absent when the exchange itself was refused
        check_symbol(info.data["exchange"] or get_settings().exchange, symbol)
    return symbol


def _indicator_fields(value: Any) -> Any:
    """`columns=rsi,adx` as a tuple of INDICATOR_FIELDS names; unknown, empty or repeated names are refused."""
    if not isinstance(value, str):
        return value
    names = value.split(",")
    valid = ", ".join(INDICATOR_FIELDS)
    if value == "":
        raise ValueError(f"columns is empty; give one or more of: {valid}")
    unknown = [name for name in names if name not in INDICATOR_FIELDS]
    if unknown:
        raise ValueError(f"unknown columns {_quotable(unknown[0])!r}; valid: {valid}")
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:  # refused, not collapsed: a doubled name is a typo for another one
        raise ValueError(f"columns names {repeated!r} more than once; give each once")
    return tuple(names)


def _limit(default_max: tuple[int, int]) -> Any:
    default, maximum = default_max
    # The bounds come before the validator, or pydantic leaves minimum/maximum out of the schema.
    return Annotated[int, Field(default, ge=1, le=maximum, description=f"Rows to return, 1 to {maximum}."),
                     BeforeValidator(_whole_number)]


Symbol = pattern(SYMBOL_RE.pattern, "BASE/QUOTE (a ccxt market) or a ticker (a stock venue), e.g. BTC/USD or MSFT")
Asset = pattern(r"^[A-Z0-9]{2,15}$", "a currency code in capitals, e.g. USD")
# An identifier (strategy, exchange, task id): a restricted alphabet keeps NULs and junk out of SQL.
Name = pattern(r"^[A-Za-z0-9_.:-]{1,64}$", "letters, digits, '_', '.', ':' or '-' (at most 64)")
# An exchange: a ccxt id or a stock venue's MIC, checked by core's venue() (an unknown one is a 400, not no rows).
Exchange = Annotated[Name, BeforeValidator(_exchange)]
# A timeframe as a query names it: the text, checked by core's Timeframe.
TimeframeName = Annotated[str, BeforeValidator(_timeframe)]
Instant = Annotated[datetime, BeforeValidator(_instant), WithJsonSchema(_INSTANT_SCHEMA)]
# The trigger passes instants on as typed: the run's scope (and its de-duplication) keeps the caller's text.
InstantText = Annotated[str, WithJsonSchema(_INSTANT_SCHEMA)]
Active = Annotated[bool, BeforeValidator(_true_or_false)]
# 0-9 as operators say it; kombu's Redis transport gets it reversed (core's broker_priority).
Priority = Annotated[int, Field(DEFAULT_PRIORITY, ge=PRIORITIES[0], le=PRIORITIES[-1],
                                description=f"{PRIORITIES[-1]} is the most urgent, {PRIORITIES[0]} can wait; "
                                            f"default {DEFAULT_PRIORITY}. Not part of the de-duplication key."),
                     BeforeValidator(_whole_number)]
Countdown = Annotated[int, Field(ge=1, le=MAX_DELAY_S, description=f"Start the run this many seconds from now "
                                 f"(1 to {MAX_DELAY_S}); it is SCHEDULED until then. Not with eta."),
                      BeforeValidator(_whole_number)]
RunState = Annotated[Literal[RUN_STATES], BeforeValidator(lambda value: value.upper())]  # any case
RunKind = Literal[RUN_KINDS]  # a listing filter: imports too
Format = Annotated[Literal[FORMATS], Field(FORMATS[0], description="json, or csv: a text/csv attachment with a "
                                           "header row, for spreadsheets and pandas. Errors are JSON either way.")]
_FIELD_NAME = f"(?:{'|'.join(INDICATOR_FIELDS)})"
# A comma-separated list is one string parameter here (every parameter schema is a scalar); the
# pattern spells out the valid names, from the same list the validator checks.
IndicatorFields = Annotated[tuple[str, ...], BeforeValidator(_indicator_fields),
                            WithJsonSchema({"type": "string", "pattern": f"^{_FIELD_NAME}(?:,{_FIELD_NAME})*$"})]


def _relative(name: str, unit: str) -> Any:
    limit = RELATIVE_LIMITS[name]
    return Annotated[int | None, Field(None, ge=1, le=limit, description=f"The last N {unit} before the run starts "
                                       f"(1 to {limit}): a range ending now, instead of since. Only where since is "
                                       "taken."), BeforeValidator(_whole_number)]


class TriggerQuery(QueryModel):
    """POST /api/manual-update/: the run to start. Values are checked by core's validate_request, as for the CLI."""

    task: str = Field(description="Run kind.", json_schema_extra={"enum": list(KINDS)})
    exchange: str | None = Field(None, description="Run the instruments of this exchange: a ccxt id or a stock "
                                                   "venue's MIC (XNYS, XSHG, ...); default the configured EXCHANGE. "
                                                   "Only EXCHANGE is fetched from (ohlc, backfill).",
                                 examples=["XNYS"])
    symbol: str | None = Field(None, description="Narrow the run to these symbols, comma-separated (required for "
                                                 "backfill). Each must be an active instrument, or give add=true.",
                               examples=["BTC/USD,ETH/USD"])
    timeframe: str | None = Field(None, description="Narrow the run to these timeframes, comma-separated.",
                                  examples=["1h,4h"])
    since: InstantText | None = Field(None, description="Start of the range (a backfill needs it, or days, hours or "
                                                        "bars).")
    until: InstantText | None = Field(None, description="End of a range given by since (after since).")
    days: _relative("days", "days")
    hours: _relative("hours", "hours")
    bars: _relative("bars", "bars of each timeframe")
    add: Active = Field(False, description="Add the named symbols (listed markets) and timeframes to the universe, "
                                           "or re-activate retired ones, instead of refusing them.")
    priority: Priority
    countdown: Countdown | None = None
    eta: Instant | None = Field(None, description="Start the run at this instant (future, at most "
                                                  f"{MAX_DELAY_S // 3600} h ahead); SCHEDULED until then. "
                                                  "Not with countdown.")

    def run_request(self) -> RunRequest:
        """The request core accepts; InvalidRunRequest (a 400 naming the parameter) otherwise."""
        return validate_request(self.task, exchange=self.exchange, symbol=self.symbol, timeframe=self.timeframe,
                                since=self.since, until=self.until, days=self.days, hours=self.hours, bars=self.bars)

    def start_at(self, now: datetime) -> datetime | None:
        """When the run starts if delayed, else None; InvalidRunRequest names countdown or eta."""
        return start_time(self.countdown, self.eta, now)


class RunStatusQuery(QueryModel):
    """GET /api/manual-update/: which run."""

    task_id: Name = Field(description="The id POST /api/manual-update/ returned.")


class InstrumentsQuery(QueryModel):
    """GET /api/instruments: the universe, narrowed."""

    active: Active | None = Field(None, description="Only active (true) or retired (false) instruments.")
    exchange: Exchange | None = Field(None, description="Only this exchange's (a ccxt id or a MIC).",
                                      examples=["kraken"])
    quote: Asset | None = Field(None, description="Only those quoted in this currency.", examples=["USD"])


class MarketsQuery(QueryModel):
    """GET /api/markets: what the exchange lists, by its last market sync."""

    exchange: Exchange | None = Field(None, description="ccxt exchange id or a stock venue's MIC; defaults to the "
                                                        "configured EXCHANGE.",
                                  examples=["kraken"])
    quote: Asset | None = Field(None, description="Only markets quoted in this currency.", examples=["USD"])
    type: Name | None = Field(None, description="Only markets of this type (spot, swap, future, ...).",
                              examples=["spot"])
    listed: Active | None = Field(None, description="Only markets the exchange still lists (true) or no longer "
                                                    "lists (false).")
    limit: _limit(MARKET_LIMIT)


class SeriesQuery(QueryModel):
    """The filters of a read of one series: symbol, timeframe, exchange and a range of bars."""

    exchange: Exchange | None = Field(None, description="ccxt exchange id or a stock venue's MIC; defaults to the "
                                                        "configured EXCHANGE.", examples=["kraken"])
    symbol: Symbol = Field(description="Instrument symbol: BASE/QUOTE on a ccxt exchange, a ticker on a stock venue.",
                           examples=["BTC/USD"])
    timeframe: TimeframeName | None = Field(None, description="Timeframe; defaults to the first configured one.",
                                            examples=["1h"])
    since: Instant | None = Field(None, description="Only bars at or after this instant.")
    until: Instant | None = Field(None, description="Only bars before this instant (must be after since).")

    _until_after_since = field_validator("until")(_after_since)
    _symbol_of_exchange = field_validator("symbol")(_fits_exchange)


class CandlesQuery(SeriesQuery):
    """GET /api/candles: one series, a range and a row count."""

    limit: _limit(CANDLE_LIMIT)
    format: Format


class IndicatorsQuery(SeriesQuery):
    """GET /api/indicators: one series, a range, the indicator columns and a row count."""

    columns: IndicatorFields | None = Field(None, description="Comma-separated indicator columns to return "
                                            f"(default all): {', '.join(INDICATOR_FIELDS)}. Each once.",
                                            examples=["rsi,adx"])
    limit: _limit(INDICATOR_LIMIT)
    format: Format


class PatternsQuery(SeriesQuery):
    """GET /api/patterns: one series, a range of completing bars and a row count."""

    limit: _limit(PATTERN_LIMIT)
    format: Format


class LevelsQuery(SeriesQuery):
    """GET /api/levels: one series, a range of last touches and a row count."""

    since: Instant | None = Field(None, description="Only levels last touched at or after this instant.")
    until: Instant | None = Field(None, description="Only levels last touched before this instant "
                                                    "(must be after since).")
    limit: _limit(LEVEL_LIMIT)
    format: Format


class SignalsQuery(QueryModel):
    """GET /api/signals: filters, each optional."""

    exchange: Exchange | None = Field(None, description="ccxt exchange id or a stock venue's MIC; defaults to the "
                                                        "configured EXCHANGE.", examples=["kraken"])
    symbol: Symbol | None = Field(None, description="Only this symbol.", examples=["BTC/USD"])
    timeframe: TimeframeName | None = Field(None, description="Only this timeframe.", examples=["1h"])
    strategy: Name | None = Field(None, description="Only this strategy.", examples=["rsi_mean_reversion"])
    since: Instant | None = Field(None, description="Only signals of bars at or after this instant.")
    limit: _limit(SIGNAL_LIMIT)
    format: Format

    _symbol_of_exchange = field_validator("symbol")(_fits_exchange)


class RunsQuery(QueryModel):
    """GET /api/runs: filters and a row count."""

    state: RunState | None = Field(None, description="Only runs in this state (any case).")
    task: RunKind | None = Field(None, description="Only runs of this kind.")
    symbol: Symbol | None = Field(None, description="Only runs scoped to this symbol or whose batches covered it.",
                                  examples=["BTC/USD"])
    exchange: Exchange | None = Field(None, description="Only runs of this exchange's instruments (the configured "
                                                        "EXCHANGE's are those naming none).", examples=["XNYS"])
    since: Instant | None = Field(None, description="Only runs created at or after this instant.")
    until: Instant | None = Field(None, description="Only runs created before this instant (must be after since).")
    limit: _limit(RUN_LIMIT)

    _until_after_since = field_validator("until")(_after_since)


class ScheduleHistoryQuery(QueryModel):
    """GET /api/schedules/<name>/history: how many of the job's changes, newest first."""

    limit: _limit(SCHEDULE_HISTORY_LIMIT)
