"""`candleflow runs start | list | show | cancel`: pipeline runs from a shell, with the API's rules."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from services.core.actors import CLI_ACTOR
from services.core.config import get_settings

__all__ = ["add_runs_parser", "runs_command", "CLI_ACTOR", "format_table"]

# The listing's columns: (heading, field of a run summary).
_COLUMNS = (("ID", "task_id"), ("KIND", "task_type"), ("STATE", "status"), ("PRI", "priority"),
            ("SCOPE", "scope"), ("CREATED", "created_at"), ("SCHEDULED", "scheduled_for"),
            ("FINISHED", "finished_at"))


def add_runs_parser(commands: argparse._SubParsersAction) -> None:
    """The `runs` verb and its sub-verbs, on the console script's parser."""
    runs = commands.add_parser("runs", help="start, list, show and cancel pipeline runs")
    verbs = runs.add_subparsers(dest="runs_command", required=True)

    start = verbs.add_parser("start", help="queue a run, now or later (as POST /api/manual-update/)")
    start.add_argument("kind", help="run kind: all, ohlc, backfill, indicators, ...")
    start.add_argument("--exchange", help="a ccxt id or a stock venue's MIC (XNYS); default EXCHANGE")
    start.add_argument("--symbol", help="a symbol or a comma list (BTC/USD,ETH/USD; tickers on a MIC venue)")
    start.add_argument("--timeframe", help="a timeframe or a comma list (1h,4h)")
    start.add_argument("--since", help="ISO date/time (UTC) or epoch ms (backfill)")
    start.add_argument("--until", help="ISO date/time (UTC) or epoch ms (backfill)")
    for name, unit in (("days", "days"), ("hours", "hours"), ("bars", "bars of each timeframe")):
        start.add_argument(f"--{name}", type=int, help=f"the last N {unit}: a range ending as the run starts")
    start.add_argument("--add", action="store_true",
                       help="add the named symbols/timeframes to the universe (or re-activate them), not refuse")
    start.add_argument("--priority", type=int, default=None, help="0-9, 9 most urgent (default 5)")
    later = start.add_mutually_exclusive_group()
    later.add_argument("--countdown", type=int, help="start this many seconds from now")
    later.add_argument("--eta", help="start at this instant (ISO, UTC unless an offset is given)")

    listing = verbs.add_parser("list", help="runs, newest first (as GET /api/runs)")
    listing.add_argument("--state")
    listing.add_argument("--kind")
    listing.add_argument("--symbol")
    listing.add_argument("--exchange", help="only runs of this exchange's instruments (a ccxt id or a MIC)")
    listing.add_argument("--since", help="created at or after (ISO or epoch ms)")
    listing.add_argument("--until", help="created before (ISO or epoch ms)")
    listing.add_argument("--limit", type=int, default=50)

    show = verbs.add_parser("show", help="one run's status and stage results")
    show.add_argument("run_id")
    cancel = verbs.add_parser("cancel", help="cancel a run not yet finished")
    cancel.add_argument("run_id")
    for parser in (start, listing, show, cancel):
        parser.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")


def format_table(rows: list[dict], columns: tuple[tuple[str, str], ...] = _COLUMNS) -> str:
    """Rows as aligned text columns under their headings; a missing value is '-'."""
    def cell(value: object) -> str:
        if value is None or value == {}:
            return "-"
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)

    cells = [[heading for heading, _ in columns]] + [[cell(row.get(field)) for _, field in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def _show(status: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(status, indent=2)
    lines = [format_table([status])]
    if status.get("cancelled_by"):
        lines.append(f"cancelled by {status['cancelled_by']} at {status['cancelled_at']}; "
                     f"completed: {', '.join(status['completed']) or 'none'}; "
                     f"not completed: {', '.join(status['not_completed']) or 'none'}")
    if status.get("resumes"):
        lines.append(f"resumed {status['resumes']} time(s) from its records, last at {status['resumed_at']}")
    if status.get("error"):
        lines.append(f"errors: {status['error']}")
    if status["result"]:
        lines.append(format_table(status["result"], (("INSTRUMENT", "instrument"), ("STAGE", "stage"),
                                                     ("STATUS", "status"), ("SECONDS", "seconds"))))
    return "\n".join(lines)


def _start(args: argparse.Namespace, celery, client, engine) -> int:
    from services.core.pipeline.runs import schedule_run, start_time, submit_run, validate_request
    from services.core.pipeline.scopes import scope_exchange, scope_symbols, scope_timeframes
    from services.core.priority import DEFAULT_PRIORITY, check_priority
    from services.core.store.universe import admit_scope
    from services.core.timeparse import parse_instant

    request = validate_request(args.kind, exchange=args.exchange, symbol=args.symbol, timeframe=args.timeframe,
                               since=args.since, until=args.until, days=args.days, hours=args.hours, bars=args.bars)
    priority = check_priority(DEFAULT_PRIORITY if args.priority is None else args.priority)
    start_at = start_time(args.countdown, parse_instant(args.eta), datetime.now(UTC))
    settings = get_settings()
    with engine.begin() as conn:
        scope = request.scope()
        for change in admit_scope(conn, scope_exchange(scope, settings.exchange), scope_symbols(scope),
                                  scope_timeframes(scope), args.add, "cli", settings.timeframes):
            print(f"universe: {change}")
    if start_at is not None:
        run_id, created = schedule_run(celery, engine, request, start_at, priority), True
    else:
        run_id, created = submit_run(celery, client, request, priority)
    if args.json:
        print(json.dumps({"task_id": run_id, "task_type": request.kind, "scope": request.scope(),
                          "priority": priority, "duplicate": not created,
                          "scheduled_for": start_at.isoformat() if start_at else None}))
    elif not created:
        print(f"{run_id}: a {request.kind} run with the same scope is already running; not queued again")
    else:
        when = f"scheduled for {start_at.isoformat()}" if start_at else "queued"
        print(f"{run_id}: {request.kind} run {when} at priority {priority}")
    return 0


def _list(args: argparse.Namespace, engine) -> int:
    from services.core.pipeline.records import read_runs
    from services.core.pipeline.runs import RUN_KINDS, RUN_STATES, run_summary
    from services.core.timeparse import parse_instant
    from services.core.venues import venue

    state = args.state.upper() if args.state else None
    if state is not None and state not in RUN_STATES:
        raise ValueError(f"unknown state {args.state!r}; valid: {', '.join(RUN_STATES)}")
    if args.kind is not None and args.kind not in RUN_KINDS:
        raise ValueError(f"unknown kind {args.kind!r}; valid: {', '.join(RUN_KINDS)}")
    if not 1 <= args.limit <= 500:
        raise ValueError(f"--limit must be from 1 to 500, got {args.limit}")
    if args.exchange is not None:
        venue(args.exchange)  # UnknownVenue names both kinds it could have been
    with engine.connect() as conn:
        exchange = None if args.exchange is None else (args.exchange, get_settings().exchange)
        rows = read_runs(conn, state=state, kind=args.kind, symbol=args.symbol, exchange=exchange,
                         since=parse_instant(args.since), until=parse_instant(args.until), limit=args.limit)
    runs = [run_summary(row) for row in rows]
    print(json.dumps(runs, indent=2) if args.json else format_table(runs))
    return 0


def runs_command(args: argparse.Namespace) -> int:
    """Run one `runs` sub-verb; 0 on success, 1 for an unknown run or one already finished."""
    import redis

    from services.core.celery_app import app as celery
    from services.core.db import get_engine
    from services.core.pipeline.cancel import RunNotCancellable, cancel_run
    from services.core.pipeline.runs import run_status

    settings = get_settings()
    client, engine = redis.Redis.from_url(settings.redis_url), get_engine()
    if args.runs_command == "start":
        return _start(args, celery, client, engine)
    if args.runs_command == "list":
        return _list(args, engine)
    if args.runs_command == "cancel":
        try:
            if cancel_run(celery, client, engine, args.run_id, CLI_ACTOR) is None:
                print(f"no run {args.run_id!r}", file=sys.stderr)
                return 1
        except RunNotCancellable as exc:
            print(str(exc), file=sys.stderr)
            return 1
    status = run_status(engine, client, args.run_id)
    if status is None:
        print(f"no run {args.run_id!r}", file=sys.stderr)
        return 1
    print(_show(status, args.json))
    return 0
