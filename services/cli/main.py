"""The `candleflow` console script: migrate, backfill, sync, repair, import, runs, schedule, instruments, markets,
status, check-secrets, run-local."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from services.cli.imports import register_import_command
from services.cli.instruments import register_universe_commands
from services.cli.runs import add_runs_parser, runs_command
from services.cli.schedules import register_schedule_commands
from services.cli.status import add_status_parser, status_command
from services.core.config import get_settings
from services.core.exceptions import CandleflowError, ConfigurationError
from services.core.logging import configure_logging
from services.core.store.universe import UniverseError

__all__ = ["main"]

log = logging.getLogger("candleflow")


def _seed_universe(settings) -> list[str]:
    """SYMBOLS × TIMEFRAMES into the universe where missing (an instrument already there is left as it is)."""
    from services.core.db import engine_for
    from services.core.store.instruments import seed_instruments

    with engine_for(settings.database_url).begin() as conn:
        return seed_instruments(conn, settings.exchange, settings.symbols, settings.timeframes)


def _migrate(args: argparse.Namespace) -> int:
    from services.core.migrate import upgrade_database

    settings = get_settings()
    upgrade_database(settings.database_url, args.revision)
    print(f"database at {args.revision}")
    if args.revision == "head":
        added = _seed_universe(settings)
        print(f"universe: added {', '.join(added)} from SYMBOLS" if added else "universe: SYMBOLS all present")
    return 0


def _admit(engine, settings, symbols: list[str], timeframes: list[str] | None, add: bool) -> None:
    """Only instruments of the universe are fetched: UniverseError for one outside it, unless `add` adds it."""
    from services.core.store.universe import admit_scope

    with engine.begin() as conn:
        for change in admit_scope(conn, settings.exchange, symbols, timeframes, add, "cli", settings.timeframes):
            print(f"universe: {change}")


def _report_line(report) -> str:
    failed = (f", {len(report.failed)} FAILED windows (see fetch_ledger; `candleflow repair` retries)"
              if report.failed else "")
    return (f"{report.symbol} {report.timeframe}: {report.candles} candles in {report.windows} windows, "
            f"{report.rejected} rejected, {report.missing} missing{failed}")


def _backfill(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from services.core.timeframe import Timeframe
    from services.core.timeparse import parse_instant_ms
    from services.ingest.context import build_context
    from services.ingest.fetching import backfill
    from services.ingest.windows import plan_windows

    settings = get_settings()
    since, until = parse_instant_ms(args.since), parse_instant_ms(args.until) if args.until else None
    ctx = build_context(settings)
    _admit(ctx.engine, settings, [args.symbol], [args.timeframe], args.add)
    tf = Timeframe.parse(args.timeframe)
    # Without --until the end is the exchange's "now", known only once the backfill starts.
    total = len(plan_windows(since, until, tf, ctx.source.capabilities.max_candles)) if until else None
    with tqdm(total=total, unit="window", desc=f"{args.symbol} {args.timeframe}", disable=args.quiet) as bar:
        def progress(result):
            bar.update(1)
            bar.set_postfix(candles=result.candles, status=result.status)
        report = backfill(ctx, args.symbol, args.timeframe, since, until, progress)
    print(_report_line(report))
    return 1 if report.failed else 0


def _sync(args: argparse.Namespace) -> int:
    from services.core.exceptions import PermanentSourceError
    from services.core.store.instruments import active_universe
    from services.ingest.context import build_context
    from services.ingest.fetching import sync_instrument

    settings = get_settings()
    ctx = build_context(settings)
    if args.symbol:
        _admit(ctx.engine, settings, args.symbol, args.timeframe, args.add)
    with ctx.engine.connect() as conn:
        universe = active_universe(conn, settings.exchange)
    failures = 0
    for symbol in args.symbol or universe:
        for timeframe in args.timeframe or universe.get(symbol) or settings.timeframes:
            try:
                report = sync_instrument(ctx, symbol, timeframe, settings.sync_lookback_bars)
            except PermanentSourceError as exc:
                print(f"{symbol} {timeframe}: FAILED: {exc}", file=sys.stderr)
                failures += 1
                continue
            print(_report_line(report))
            failures += bool(report.failed)
    return 1 if failures else 0


def _repair(args: argparse.Namespace) -> int:
    from services.ingest.context import build_context
    from services.ingest.fetching import repair_windows

    outcomes = repair_windows(build_context(get_settings()), limit=args.limit)
    for outcome in outcomes:
        print(f"{outcome['symbol']} {outcome['timeframe']} [{outcome['start_ms']}, {outcome['end_ms']}): "
              f"{outcome['was']} -> {outcome['status']} {outcome['error'] or ''}".rstrip())
    print(f"{len(outcomes)} window(s) re-fetched")
    return 1 if any(o["status"] == "failed" for o in outcomes) else 0


def _exchange_sim(argv: list[str]) -> int:
    from services.exchange_sim.server import main as sim_main

    return sim_main(argv) or 0


# Where each Procfile variable points unless the environment says otherwise.
_RUN_LOCAL_DEFAULTS = {"API_PORT": "8000", "SIM_PORT": "8090", "EXPORTER_PORT": "9808", "EXPORTER_BIND": "127.0.0.1"}


def _run_local(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from services.cli.procfile import parse_procfile, run_procfile
    from services.core.migrate import upgrade_database

    procfile = Path(args.procfile).resolve()
    specs = parse_procfile(procfile.read_text())
    unknown = sorted(set(args.only or ()) - {spec.name for spec in specs})
    if unknown:
        raise ValueError(f"no Procfile entry {', '.join(unknown)}; entries: {', '.join(s.name for s in specs)}")
    specs = [spec for spec in specs if not args.only or spec.name in args.only]

    settings = get_settings()
    env = {**_RUN_LOCAL_DEFAULTS, "SYMBOLS": ",".join(settings.symbols), **os.environ}
    # The entries name console scripts of this environment (celery, gunicorn), wherever it lives.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Fields set by the environment or .env, not defaults: with no exchange chosen, the workers
    # would poll the real default exchange; a first run should work offline, as compose's demo does.
    if not {"exchange", "exchange_api_url"} & settings.model_fields_set:
        env["EXCHANGE"], env["EXCHANGE_API_URL"] = "binance", f"http://127.0.0.1:{env['SIM_PORT']}"
        print(f"run-local: no EXCHANGE or EXCHANGE_API_URL set, so the workers use the demo exchange "
              f"(exchange-sim) at {env['EXCHANGE_API_URL']}", flush=True)
    upgrade_database(settings.database_url)
    _seed_universe(settings)
    return run_procfile(specs, env, cwd=procfile.parent)


def _check_secrets(args: argparse.Namespace) -> int:
    from services.core.secrets import weakness

    problems = [f"{name} {reason}" for name in args.variables if (reason := weakness(os.environ.get(name)))]
    for problem in problems:
        print(f"candleflow check-secrets: {problem}", file=sys.stderr)
    return 2 if problems else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="candleflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--revision", default="head")

    backfill = commands.add_parser("backfill", help="fetch a historical range for one symbol")
    backfill.add_argument("symbol")
    backfill.add_argument("--timeframe", "-t", default="1h")
    backfill.add_argument("--since", required=True, help="ISO date/time (UTC) or epoch ms")
    backfill.add_argument("--until", help="ISO date/time (UTC) or epoch ms; default now")
    backfill.add_argument("--quiet", action="store_true", help="no progress bar")
    backfill.add_argument("--add", action="store_true", help="add the symbol (a listed market) or the timeframe "
                                                             "to the universe instead of refusing")

    sync = commands.add_parser("sync", help="bring every active instrument up to date, in this process")
    sync.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    sync.add_argument("--timeframe", action="append", help="only this timeframe (repeatable)")
    sync.add_argument("--add", action="store_true", help="add the named symbols to the universe instead of refusing")

    repair = commands.add_parser("repair", help="re-fetch failed fetch windows")
    repair.add_argument("--limit", type=int, default=500)

    add_runs_parser(commands)
    add_status_parser(commands)

    run_local = commands.add_parser("run-local", help="migrate, then run every Procfile process")
    run_local.add_argument("--procfile", default="Procfile")
    run_local.add_argument("--only", action="append", help="run only this entry (repeatable)")

    check_secrets = commands.add_parser(
        "check-secrets", help="refuse weak secrets (the production rule) in these environment variables")
    check_secrets.add_argument("variables", nargs="+", metavar="VARIABLE")

    commands.add_parser("exchange-sim", help="run the offline exchange simulator (see --help after it)",
                        add_help=False)
    register_schedule_commands(commands)
    register_universe_commands(commands)
    register_import_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 0 on success, 1 when work failed, 2 on bad usage or configuration."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if argv[:1] == ["exchange-sim"]:
        return _exchange_sim(argv[1:])
    args = parser.parse_args(argv)
    try:
        settings = get_settings()  # a bad variable stops here, named in the message
        configure_logging(settings.log_level, settings.log_format)
        # `schedule` verbs bring their own handler (services/cli/schedules.py).
        handler = getattr(args, "handler", None) or {
            "migrate": _migrate, "backfill": _backfill, "sync": _sync, "repair": _repair, "run-local": _run_local,
            "check-secrets": _check_secrets, "runs": runs_command, "status": status_command}[args.command]
        return handler(args)
    except (ConfigurationError, ValueError, UniverseError) as exc:  # the request itself is wrong
        print(f"candleflow {args.command}: {exc}", file=sys.stderr)
        return 2
    except CandleflowError as exc:
        print(f"candleflow {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
