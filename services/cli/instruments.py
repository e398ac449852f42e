"""`candleflow instruments list|add|set` and `markets list|sync`: the universe from a shell, with the API's rules."""

from __future__ import annotations

import argparse
import json
import sys

from services.cli.runs import format_table
from services.core.config import get_settings
from services.core.db import get_engine
from services.core.venues import PAIR_RE

__all__ = ["register_universe_commands"]

_INSTRUMENT_COLUMNS = (("EXCHANGE", "exchange"), ("SYMBOL", "symbol"), ("TIMEFRAMES", "timeframes"),
                       ("ACTIVE", "active"), ("SOURCE", "source"), ("ADDED", "added_at"), ("RETIRED", "retired_at"),
                       ("MARKET GONE", "market_gone_at"))
_MARKET_COLUMNS = (("SYMBOL", "symbol"), ("ID", "market_id"), ("BASE", "base"), ("QUOTE", "quote"), ("TYPE", "type"),
                   ("ACTIVE", "active"), ("LAST SEEN", "last_seen_at"), ("GONE", "gone_at"))


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value.lower() == "true"


def _timeframes(value: str) -> list[str]:
    from services.core.pipeline.scopes import ScopeError, canonical_timeframes

    try:
        return canonical_timeframes(value).split(",")
    except ScopeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _symbol(value: str) -> str:
    if not PAIR_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"malformed symbol {value!r}: expected BASE/QUOTE, e.g. SOL/USD")
    return value


def _shown(rows: list[dict]) -> list[dict]:
    return [{**row, "timeframes": ",".join(row["timeframes"])} if "timeframes" in row else row for row in rows]


def _print(args: argparse.Namespace, rows: list[dict], columns: tuple) -> None:
    print(json.dumps(rows, indent=2, default=str) if args.json else format_table(_shown(rows), columns))


def _instruments(args: argparse.Namespace) -> int:
    from services.core.store.instruments import change_instrument, instrument_view, read_instrument, read_instruments
    from services.core.store.universe import add_instrument, require_listed

    settings = get_settings()
    with get_engine().begin() as conn:
        if args.instruments_command == "list":
            rows = read_instruments(conn, active=args.active, exchange=args.exchange, quote=args.quote)
        elif args.instruments_command == "add":
            rows = [add_instrument(conn, settings.exchange, args.symbol, args.timeframes or settings.timeframes,
                                   "cli")]
        else:
            exchange = args.exchange or settings.exchange
            if args.active is None and args.timeframes is None:
                raise ValueError("nothing to change: give --active and/or --timeframes")
            current = read_instrument(conn, exchange, args.symbol)
            if current is None:
                print(f"candleflow instruments: no instrument {args.symbol} on {exchange}", file=sys.stderr)
                return 1
            if args.active and current["market_gone_at"] is not None:
                require_listed(conn, exchange, [args.symbol])
            rows = [change_instrument(conn, exchange, args.symbol, active=args.active, timeframes=args.timeframes)]
    _print(args, [instrument_view(row) for row in rows], _INSTRUMENT_COLUMNS)
    return 0


def _markets(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.markets_command == "sync":
        from services.ingest.context import build_context
        from services.ingest.market_sync import sync_markets

        ctx = build_context(settings)
        report = sync_markets(ctx.source, ctx.engine, settings.auto_add_rule, settings.timeframes).as_dict()
        print(json.dumps(report, indent=2) if args.json else
              f"{report['exchange']}: {report['markets']} markets, {report['new_count']} new, "
              f"{report['gone_count']} gone; {report['added_count']} instrument(s) added, "
              f"{report['retired_count']} retired")
        return 0
    from services.core.store.markets import read_markets

    with get_engine().connect() as conn:
        rows = read_markets(conn, args.exchange or settings.exchange, quote=args.quote, market_type=args.type,
                            listed=args.listed)
    _print(args, rows, _MARKET_COLUMNS)
    return 0


def register_universe_commands(commands: argparse._SubParsersAction) -> None:
    """The `instruments` and `markets` verbs, on the console script's parser."""
    instruments = commands.add_parser("instruments", help="list, add, retire or re-time instruments (the universe)")
    instruments.set_defaults(handler=_instruments)
    verbs = instruments.add_subparsers(dest="instruments_command", required=True)
    listing = verbs.add_parser("list", help="the universe (as GET /api/instruments)")
    listing.add_argument("--active", type=_flag, help="true: active only; false: retired only")
    listing.add_argument("--exchange")
    listing.add_argument("--quote", help="only those quoted in this currency, e.g. USD")
    add = verbs.add_parser("add", help="add a market the exchange lists (as POST /api/instruments)")
    add.add_argument("symbol", type=_symbol)
    add.add_argument("--timeframes", type=_timeframes, help="comma list; default TIMEFRAMES")
    change = verbs.add_parser("set", help="retire, re-activate or re-time one (as PATCH /api/instruments/...)")
    change.add_argument("symbol", type=_symbol)
    change.add_argument("--exchange", help="default EXCHANGE")
    change.add_argument("--active", type=_flag, help="false retires it (its data stays), true re-activates it")
    change.add_argument("--timeframes", type=_timeframes, help="comma list; replaces its timeframes")

    markets = commands.add_parser("markets", help="the exchange's market list: show it, or sync it now")
    markets.set_defaults(handler=_markets)
    market_verbs = markets.add_subparsers(dest="markets_command", required=True)
    market_list = market_verbs.add_parser("list", help="markets as the last sync recorded them (as GET /api/markets)")
    market_list.add_argument("--exchange")
    market_list.add_argument("--quote")
    market_list.add_argument("--type", help="spot, swap, future, ...")
    market_list.add_argument("--listed", type=_flag, help="true: still listed; false: gone")
    market_verbs.add_parser("sync", help="read the exchange's markets now (what job markets-sync-daily does)")
    for parser in (listing, add, change, market_list, *market_verbs.choices.values()):
        if not any(action.dest == "json" for action in parser._actions):
            parser.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
