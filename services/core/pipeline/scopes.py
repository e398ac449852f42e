"""Run scopes: lists of symbols and timeframes, and relative ranges (days, hours, bars) that end as a run starts."""

from __future__ import annotations

from services.core.timeframe import Timeframe
from services.core.timeparse import canonical_instant
from services.core.venues import VENUE_KINDS, check_symbol

__all__ = ["LIST_SEP", "RELATIVE", "RELATIVE_LIMITS", "ScopeError", "canonical_symbols", "canonical_timeframes",
           "scope_symbols", "scope_timeframes", "scope_exchange", "relative_field", "resolve_range"]

# One parameter names several values by commas (`symbol=BTC/USD,ETH/USD`); repeating a parameter is refused.
LIST_SEP = ","
# A relative range's unit in milliseconds; `bars` is the batch's timeframe, known only when a run plans its batches.
RELATIVE: dict[str, int | None] = {"days": 86_400_000, "hours": 3_600_000, "bars": None}
# The largest N each takes: ten years of days or hours, and more bars than any exchange serves in one backfill.
RELATIVE_LIMITS = {"days": 3660, "hours": 87_840, "bars": 100_000}
# More names than this in one run is a universe job (`all` with no symbol), not a list.
MAX_LIST = 200


class ScopeError(ValueError):
    """A scope value that cannot be read; `parameter` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def _items(parameter: str, value: str) -> list[str]:
    items = [item.strip() for item in value.split(LIST_SEP)]
    if any(not item for item in items):
        example = f"{VENUE_KINDS['ccxt'].example},ETH/USD" if parameter == "symbol" else "1h,4h"
        raise ScopeError(parameter, f"{parameter} has an empty item: separate values by single commas, "
                                    f"e.g. {parameter}={example}")
    if len(items) > MAX_LIST:
        raise ScopeError(parameter, f"{parameter} names {len(items)} values; at most {MAX_LIST} (leave it out to "
                                    "cover every active instrument)")
    return items


def canonical_symbols(value: str, exchange: str) -> str:
    """The comma list with each symbol checked against `exchange`'s kind (BASE/QUOTE, or a ticker on a MIC
    venue), duplicates dropped, sorted: one spelling per set of symbols."""
    symbols = _items("symbol", value)
    for symbol in symbols:
        try:
            check_symbol(exchange, symbol)
        except ValueError as exc:
            raise ScopeError("symbol", str(exc)) from None
    return LIST_SEP.join(sorted(set(symbols)))


def canonical_timeframes(value: str) -> str:
    """The comma list with each timeframe checked, duplicates dropped, shortest first."""
    timeframes = _items("timeframe", value)
    parsed = []
    for name in timeframes:
        try:
            parsed.append(Timeframe.parse(name))
        except ValueError as exc:
            raise ScopeError("timeframe", str(exc)) from None
    return LIST_SEP.join(tf.name for tf in sorted(set(parsed), key=lambda tf: (tf.ms, tf.name)))


def scope_symbols(scope: dict) -> list[str] | None:
    """The symbols a scope names, or None for every active instrument."""
    return scope["symbol"].split(LIST_SEP) if scope.get("symbol") else None


def scope_timeframes(scope: dict) -> list[str] | None:
    """The timeframes a scope names, or None for each instrument's own."""
    return scope["timeframe"].split(LIST_SEP) if scope.get("timeframe") else None


def scope_exchange(scope: dict, default: str) -> str:
    """The exchange a scope's instruments are on: the one it names, else the configured EXCHANGE."""
    return scope.get("exchange") or default


def relative_field(scope: dict) -> str | None:
    """Which relative range (days, hours or bars) the scope gives, if any."""
    return next((name for name in RELATIVE if scope.get(name) is not None), None)


def resolve_range(scope: dict, timeframe: str, now_ms: int) -> dict:
    """The since/until a batch of `timeframe` runs with: the scope's own, or its relative range ending at `now_ms`.

    The start is aligned down to the timeframe, so the range holds whole bars: `days=1` on 1h is
    the 24 closed bars before the open one, plus the open one; `bars=N` is N closed bars plus the open one.
    """
    name = relative_field(scope)
    if name is None:
        return {k: scope[k] for k in ("since", "until") if k in scope}
    tf_ms = Timeframe.parse(timeframe).ms
    open_bar = now_ms - now_ms % tf_ms
    span = scope[name] * (RELATIVE[name] or tf_ms)
    start = open_bar - span if RELATIVE[name] is None else now_ms - span
    return {"since": canonical_instant(max(0, start - start % tf_ms))}
