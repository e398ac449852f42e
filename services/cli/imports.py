"""`candleflow import FILE…`: CSV or Parquet candle files into candles, in this process, each file one import run."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

__all__ = ["register_import_command", "report_line"]


def report_line(filename: str, exchange: str, report) -> str:
    """One instrument's outcome of an import, as the CLI prints it."""
    rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(report.rejected.items()))
    return (f"{filename}: {report.symbol} {report.timeframe} on {exchange}: {report.rows_read} rows read, "
            f"{report.stored} stored, {report.unchanged} unchanged, {report.repeats} repeated, "
            f"{sum(report.rejected.values())} rejected" + (f" ({rejected})" if rejected else "")
            + ("; added to the universe" if report.added else ""))


def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from services.core.db import get_engine
    from services.core.imports import ImportOptions, parse_column_mapping
    from services.ingest.files.importing import record_import
    from services.ingest.files.reading import parse_file
    from services.ingest.files.storing import check_instruments

    options = ImportOptions(args.exchange, args.timeframe, args.symbol,
                            parse_column_mapping(args.columns) if args.columns else {}, args.date_format)
    files = []
    for path in args.files:  # every file read and checked before any is written
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        now_ms = int(time.time() * 1000)
        files.append((parse_file(data, Path(path).name, options, now_ms), now_ms))
    engine = get_engine()
    with engine.connect() as conn:
        for parsed, _ in files:
            check_instruments(conn, parsed, options)
    for parsed, now_ms in files:
        run_id = str(uuid.uuid4())
        total = sum(len(s.ts) + len(s.rejected) + s.repeats for s in parsed.series.values())
        with tqdm(total=total, unit="row", desc=parsed.name, disable=args.quiet or args.json) as bar, \
                engine.begin() as conn:
            reports = record_import(conn, run_id, parsed, options, now_ms, bar.update)
        if args.json:
            print(json.dumps({"run_id": run_id, "file": parsed.name, "format": parsed.format,
                              "ignored_columns": list(parsed.layout.ignored),
                              "instruments": [{"symbol": r.symbol, **r.entry()} for r in reports]}))
            continue
        for report in reports:
            print(report_line(parsed.name, args.exchange, report))
        if parsed.layout.ignored:
            print(f"{parsed.name}: columns left out: {', '.join(parsed.layout.ignored)}")
        print(f"{parsed.name}: run {run_id} (candleflow runs show {run_id})")
    if args.run:
        symbols = sorted({symbol for parsed, _ in files for symbol in parsed.series})
        _start_analysis(options, symbols, args.json)
    return 0


def _start_analysis(options, symbols: list[str], as_json: bool) -> None:
    """`--run`: the imported instruments' indicators and signals now, as `candleflow runs start all --exchange`."""
    import redis

    from services.core.celery_app import app as celery
    from services.core.config import get_settings
    from services.core.pipeline.runs import submit_run, validate_request
    from services.core.pipeline.scopes import MAX_LIST
    from services.core.priority import DEFAULT_PRIORITY

    # Beyond a list's limit, the venue's whole universe in this timeframe (the imported ones among it).
    named = ",".join(symbols) if len(symbols) <= MAX_LIST else None
    request = validate_request("all", exchange=options.exchange, symbol=named, timeframe=options.timeframe)
    run_id, created = submit_run(celery, redis.Redis.from_url(get_settings().redis_url), request, DEFAULT_PRIORITY)
    if as_json:
        print(json.dumps({"analysis_run_id": run_id, "scope": request.scope(), "duplicate": not created}))
    else:
        state = "queued" if created else "already running"
        print(f"indicators and signals: run {run_id} {state} (candleflow runs show {run_id})")


def register_import_command(commands: argparse._SubParsersAction) -> None:
    """The `import` verb, on the console script's parser."""
    parser = commands.add_parser("import", help="import CSV (optionally gzipped) or Parquet candle files")
    parser.set_defaults(handler=_import)
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--exchange", required=True, help="a MIC (XNYS, XSHG, XTAI, ...) or a ccxt exchange id")
    parser.add_argument("--timeframe", "-t", required=True, help="the bars' length, e.g. 1d, 1h")
    parser.add_argument("--symbol", help="the instrument; leave it out when the file has a symbol column")
    parser.add_argument("--columns", help="field=Column pairs over the recognised layout, "
                                          "e.g. 'date=Trade Date,close=Last'")
    parser.add_argument("--date-format", help="strptime format of the date column, e.g. %%d.%%m.%%Y")
    parser.add_argument("--run", action="store_true", help="then queue an `all` run of the imported instruments "
                                                           "(their indicators and signals) on the workers")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="one JSON line per file instead of text")
