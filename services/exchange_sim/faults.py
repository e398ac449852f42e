"""Fault plan: deterministic rules that make chosen requests fail or chosen candles go wrong."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .shared import SharedMemory

__all__ = [
    "REQUEST_KINDS", "DATA_KINDS", "DEFECTS", "BINANCE_FIELDS", "KRAKEN_FIELDS",
    "FaultRule", "RequestContext", "FaultPlan", "GapFilter", "parse_rule", "error_reply",
]

DATA_KINDS = ("missing_candles", "bad_candle")
REQUEST_KINDS = ("http_418", "http_429", "http_500", "http_502", "http_503", "http_504",
                 "timeout", "malformed_json", "html_page")
DEFECTS = ("high_below_low", "negative_price", "zero_price", "nan_price", "negative_volume")
# Where each field sits in a candle row of each dialect (Kraken has vwap before volume).
BINANCE_FIELDS = {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}
KRAKEN_FIELDS = {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 6}
_BODIES = ("html", "json", "empty")
_BODY_ALIASES = {"binance_json": "json"}  # the name from before the simulator spoke Kraken
_DATA_ONLY = ("ts", "defect", "field")
_REQUEST_ONLY = ("retry_after", "seconds", "body")
_KEYS = {"kind", "path", "symbol", "interval", "timeframe", "start_ms", "end_ms", "ts",
         "after", "times", "retry_after", "seconds", "body", "defect", "field"}


@dataclass(eq=False)  # rules are compared by identity: two equal rules count separately
class FaultRule:
    """One rule; `fired` counts the requests it has failed (or responses it has altered)."""

    kind: str
    path: str | None = None
    symbol: str | None = None  # Binance id ("ETHUSD"); a ccxt symbol is accepted and converted
    interval: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    ts: frozenset[int] = frozenset()
    after: int = 0
    times: int | None = None
    retry_after: int = 1
    seconds: float = 5.0
    body: str = "html"
    defect: str = "high_below_low"
    field: str = "close"
    seen: int = 0
    fired: int = 0

    def describe(self) -> dict:
        """The rule as JSON, without options that do not apply to its kind."""
        skip = set(_DATA_ONLY if self.kind not in DATA_KINDS else _REQUEST_ONLY)
        if self.kind != "timeout":
            skip.add("seconds")
        if self.kind not in ("http_418", "http_429"):
            skip.add("retry_after")
        if not self.kind.startswith("http_5"):
            skip.add("body")
        out = {k: v for k, v in self.__dict__.items() if v is not None and k not in skip}
        if "ts" in out:
            out["ts"] = sorted(self.ts)
        return out


@dataclass(frozen=True)
class RequestContext:
    """What a rule may match on; first_ms/last_ms are the open times of the candles served."""

    path: str
    symbol: str | None = None
    interval: str | None = None
    first_ms: int | None = None
    last_ms: int | None = None


def parse_rule(raw: dict) -> FaultRule:
    """Validate one rule given as JSON; raises ValueError naming the problem."""
    if not isinstance(raw, dict):
        raise ValueError(f"a fault rule must be an object, got {raw!r}")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
    kind = raw.get("kind")
    if kind not in REQUEST_KINDS + DATA_KINDS:
        raise ValueError(f"fault kind must be one of {REQUEST_KINDS + DATA_KINDS}, got {kind!r}")
    rule = FaultRule(kind=kind, path=raw.get("path"),
                     interval=raw.get("interval", raw.get("timeframe")),
                     ts=frozenset(int(t) for t in raw.get("ts", ())),
                     after=int(raw.get("after", 0)),
                     body=_BODY_ALIASES.get(raw.get("body"), raw.get("body", "html")),
                     defect=raw.get("defect", "high_below_low"), field=raw.get("field", "close"))
    if raw.get("symbol"):
        rule.symbol = str(raw["symbol"]).replace("/", "").upper()
    for key in ("start_ms", "end_ms", "times"):
        if raw.get(key) is not None:
            setattr(rule, key, int(raw[key]))
    rule.retry_after = int(raw.get("retry_after", 1))
    rule.seconds = float(raw.get("seconds", 5.0))
    if kind in DATA_KINDS and not rule.ts and rule.start_ms is None:
        raise ValueError(f"{kind} needs 'ts' (candle open times) or 'start_ms'/'end_ms'")
    if rule.defect not in DEFECTS or rule.field not in BINANCE_FIELDS:  # the same names in every dialect
        raise ValueError(f"defect must be one of {DEFECTS}, field one of {tuple(BINANCE_FIELDS)}")
    if rule.body not in _BODIES:
        raise ValueError(f"body must be one of {_BODIES}, got {rule.body!r}")
    return rule


def _matches_request(rule: FaultRule, ctx: RequestContext) -> bool:
    if rule.path is not None and rule.path != ctx.path:
        return False
    if rule.symbol is not None and rule.symbol != ctx.symbol:
        return False
    if rule.interval is not None and rule.interval != ctx.interval:
        return False
    if rule.start_ms is None and rule.end_ms is None:
        return True
    if ctx.first_ms is None:  # the request serves no candles, so no window to overlap
        return False
    return ((rule.start_ms is None or rule.start_ms <= ctx.last_ms)
            and (rule.end_ms is None or ctx.first_ms < rule.end_ms))


def _hits_candle(rule: FaultRule, open_ms: int) -> bool:
    if open_ms in rule.ts:
        return True
    if rule.start_ms is None or open_ms < rule.start_ms:
        return False
    return rule.end_ms is None or open_ms < rule.end_ms


def _spent(rule: FaultRule) -> bool:
    return rule.times is not None and rule.fired >= rule.times


_PLAN = struct.Struct("qq")  # generation (bumped whenever the rule list changes), number of rules
_MAX_RULES = 4096
_COUNTERS_AT = 64  # seen[_MAX_RULES] then fired[_MAX_RULES], int64
_RULES_AT = _COUNTERS_AT + 2 * 8 * _MAX_RULES
_RULES_CAPACITY = 16 << 20  # the rules as JSON; only the pages written are ever committed


def _raw(rule: FaultRule) -> dict:
    """The rule as parse_rule takes it (describe() without the counters)."""
    return {k: v for k, v in rule.describe().items() if k not in ("seen", "fired")}


class FaultPlan:
    """The active rules of one simulator run; safe to use from the server's threads and processes.

    Rules and their counters live in shared memory, so with several server processes a rule
    with `times: 2` fails two requests in all, whichever processes serve them. Each process
    keeps the parsed rules and re-reads them only when the list changed (a generation number).
    """

    def __init__(self, rules: list[dict] | None = None):
        self._memory = SharedMemory(_RULES_AT + _RULES_CAPACITY)
        self._generation = 0
        self._rules: list[FaultRule] = []
        self.replace(list(rules or ()))

    @contextmanager
    def _locked(self) -> Iterator[list[FaultRule]]:
        """The current rules with the counters every process has added up, written back after."""
        memory = self._memory
        with memory.lock:
            generation, count = _PLAN.unpack_from(memory.buffer, 0)
            if generation != self._generation:
                self._rules = [parse_rule(r) for r in memory.read_json(_RULES_AT) or ()]
                self._generation = generation
            seen = memory.unpack(f"{count}q", _COUNTERS_AT)
            fired = memory.unpack(f"{count}q", _COUNTERS_AT + 8 * _MAX_RULES)
            for rule, rule_seen, rule_fired in zip(self._rules, seen, fired, strict=True):
                rule.seen, rule.fired = rule_seen, rule_fired
            yield self._rules
            _generation, count = _PLAN.unpack_from(memory.buffer, 0)  # _store may have changed the list
            memory.pack(f"{count}q", _COUNTERS_AT, *(r.seen for r in self._rules))
            memory.pack(f"{count}q", _COUNTERS_AT + 8 * _MAX_RULES, *(r.fired for r in self._rules))

    def _store(self, rules: list[FaultRule]) -> None:
        """Make `rules` (counters included) the list every process sees; call with the lock held."""
        if len(rules) > _MAX_RULES:
            raise ValueError(f"at most {_MAX_RULES} fault rules")
        memory = self._memory
        memory.write_json(_RULES_AT, _RULES_CAPACITY, [_raw(r) for r in rules])
        generation, _count = _PLAN.unpack_from(memory.buffer, 0)
        _PLAN.pack_into(memory.buffer, 0, generation + 1, len(rules))
        self._rules, self._generation = rules, generation + 1

    def replace(self, rules: list[dict]) -> None:
        parsed = [parse_rule(r) for r in rules]
        with self._locked():
            self._store(parsed)

    def add(self, rules: list[dict]) -> None:
        parsed = [parse_rule(r) for r in rules]
        with self._locked() as current:
            self._store(current + parsed)

    def clear(self) -> None:
        self.replace([])

    def describe(self) -> list[dict]:
        with self._locked() as rules:
            return [r.describe() for r in rules]

    def request_fault(self, ctx: RequestContext) -> FaultRule | None:
        """The first request rule that fires for this request (counting it), if any."""
        if _PLAN.unpack_from(self._memory.buffer, 0)[1] == 0:
            return None  # no rules, the usual case: no lock, no parsing
        with self._locked() as rules:
            for rule in rules:
                if rule.kind in DATA_KINDS or _spent(rule) or not _matches_request(rule, ctx):
                    continue
                rule.seen += 1
                if rule.seen > rule.after:
                    rule.fired += 1
                    return rule
            return None

    def _data_rules(self, rules: list[FaultRule], kind: str, ctx: RequestContext) -> list[FaultRule]:
        plain = RequestContext(ctx.path, ctx.symbol, ctx.interval)  # the window lives in ts/start/end
        return [r for r in rules if r.kind == kind and not _spent(r)
                and _matches_request(_unwindowed(r), plain)]

    def gap_filter(self, ctx: RequestContext) -> GapFilter:
        """A predicate on candle open times for this klines request: True = leave it out."""
        if _PLAN.unpack_from(self._memory.buffer, 0)[1] == 0:
            return GapFilter([])
        with self._locked() as rules:
            return GapFilter(self._data_rules(rules, "missing_candles", ctx))

    def record_use(self, rules) -> None:
        """Count data rules whose candles were in a response (`after` and `times` count these)."""
        if not rules:
            return
        with self._locked() as current:
            # A process keeps its rule objects until the list changes; a rule replaced since is not counted.
            for rule in current:
                if any(rule is used for used in rules):
                    _count(rule)

    def spoil(self, ctx: RequestContext, rows: list[str], open_ms: list[int], tick: str,
              fields: dict[str, int] = BINANCE_FIELDS) -> list[str]:
        """Candle rows (JSON text, one per open time, laid out as `fields` says) with bad_candle
        rules applied; counts the rules used."""
        if _PLAN.unpack_from(self._memory.buffer, 0)[1] == 0:
            return rows
        with self._locked() as rules:
            for rule in self._data_rules(rules, "bad_candle", ctx):
                hit = [i for i, ts in enumerate(open_ms) if _hits_candle(rule, ts)]
                if hit and _armed(rule):
                    for i in hit:
                        row = json.loads(rows[i])
                        row = _with_defect(row, rule.defect, rule.field, fields, tick)
                        rows[i] = json.dumps(row, separators=(",", ":"))
                if hit:
                    _count(rule)
        return rows


def _armed(rule: FaultRule) -> bool:
    """A data rule acts once `after` responses holding its candles have passed untouched."""
    return rule.seen >= rule.after


def _count(rule: FaultRule) -> None:
    if _armed(rule):
        rule.fired += 1
    rule.seen += 1


class GapFilter:
    """Hides candles of armed gap rules; remembers every rule whose candles were asked for,
    so record_use() counts exactly those."""

    def __init__(self, rules: list[FaultRule]):
        self.rules, self.used = rules, []
        self._armed = [r for r in rules if _armed(r)]

    def __call__(self, open_ms: int) -> bool:
        hit = [r for r in self.rules if _hits_candle(r, open_ms)]
        for rule in hit:
            if rule not in self.used:
                self.used.append(rule)
        return any(r in self._armed for r in hit)


def _unwindowed(rule: FaultRule) -> FaultRule:
    copy = FaultRule(**{**rule.__dict__})
    copy.start_ms = copy.end_ms = None
    return copy


def _with_defect(row: list, defect: str, field: str, fields: dict[str, int], tick: str) -> list:
    index, high, low, volume = fields[field], fields["high"], fields["low"], fields["volume"]
    if defect == "high_below_low":
        row[high] = f"{max(float(row[low]) - float(tick), float(row[low]) * 0.99):.8f}"
    elif defect == "negative_price":
        row[index] = "-" + row[index].lstrip("-")
    elif defect == "zero_price":
        row[index] = "0.00000000"
    elif defect == "nan_price":
        row[index] = "NaN"
    elif defect == "negative_volume":
        row[volume] = "-" + row[volume].lstrip("-")
    return row


_HTML = ("<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
         "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>{front}</center>\r\n"
         "</body>\r\n</html>\r\n")
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Time-out"}
_FRONT = {"binance": "CloudFront", "kraken": "cloudflare"}  # the CDN in front of each exchange
_MAINTENANCE = {
    "binance": ("<!DOCTYPE html><html><head><title>Binance - System Maintenance</title></head>"
                "<body><h1>System maintenance</h1><p>Binance is upgrading its systems.</p>"
                "</body></html>"),
    "kraken": ("<!DOCTYPE html><html><head><title>Kraken | Down for maintenance</title></head>"
               "<body><h1>Kraken is down for scheduled maintenance</h1>"
               "<p>Please check status.kraken.com for updates.</p></body></html>"),
}
_JSON_TYPE = {"Content-Type": "application/json;charset=UTF-8"}


def _binance_json_error(rule: FaultRule, status: int, now_ms: int) -> tuple[int, dict, str]:
    """Binance answers with the HTTP status and {"code", "msg"}; limits also say Retry-After."""
    if rule.kind in ("http_429", "http_418"):
        msg = ("Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
               "Please use the websocket for live updates to avoid polling the API."
               if rule.kind == "http_429" else
               f"Way too many requests; IP(127.0.0.1) banned until {now_ms + rule.retry_after * 1000}."
               " Please use the websocket for live updates to avoid bans.")
        headers = {**_JSON_TYPE, "Retry-After": str(rule.retry_after)}
        return status, headers, json.dumps({"code": -1003, "msg": msg})
    return status, _JSON_TYPE, json.dumps(
        {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."})


# Kraken's API reports these in its envelope with HTTP 200; only its CDN answers with a 5xx status.
_KRAKEN_ERRORS = {"http_429": "EGeneral:Too many requests", "http_418": "EGeneral:Temporary lockout",
                  "http_500": "EGeneral:Internal error", "http_502": "EService:Busy",
                  "http_503": "EService:Unavailable", "http_504": "EService:Unavailable"}


def _kraken_json_error(rule: FaultRule, _status: int, _now_ms: int) -> tuple[int, dict, str]:
    return 200, _JSON_TYPE, json.dumps({"error": [_KRAKEN_ERRORS[rule.kind]], "result": {}})


_JSON_ERRORS = {"binance": _binance_json_error, "kraken": _kraken_json_error}


def error_reply(rule: FaultRule, normal_body: str, now_ms: int,
                dialect: str = "binance") -> tuple[int, dict, str]:
    """(status, headers, body) that a fired request rule answers with in `dialect` (timeouts excluded)."""
    if rule.kind == "malformed_json":
        # A body cut off mid-stream, as a dropped connection behind a proxy produces.
        return 200, _JSON_TYPE, normal_body[: max(1, len(normal_body) // 2)]
    if rule.kind == "html_page":
        return 200, {"Content-Type": "text/html"}, _MAINTENANCE[dialect]
    status = int(rule.kind[5:])
    if rule.kind in ("http_429", "http_418") or rule.body == "json":
        return _JSON_ERRORS[dialect](rule, status, now_ms)
    if rule.body == "empty":
        return status, {"Content-Type": "text/html"}, ""
    return status, {"Content-Type": "text/html"}, _HTML.format(status=status, reason=_REASONS[status],
                                                                front=_FRONT[dialect])
