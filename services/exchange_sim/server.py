"""Run the exchange simulator: a blocking serve() for the CLI, running_simulator() for tests."""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .controller import DEFAULT_DIALECT, DEFAULT_LISTED, DEFAULT_NOW, DIALECTS, Simulator, iso
from .markets import DEFAULT_SYMBOLS

__all__ = ["serve", "running_simulator", "load_fault_file", "parse_args", "main"]

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Request handler without werkzeug's per-request access log (tests make thousands)."""

    def log(self, type: str, message: str, *args) -> None:
        if type == "error":
            super().log(type, message, *args)


def load_fault_file(path: str | Path) -> list[dict]:
    """Rules from a JSON file holding a list of rules or {"rules": [...]}."""
    data = json.loads(Path(path).read_text())
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list):
        raise ValueError(f"{path}: expected a list of fault rules or {{\"rules\": [...]}}")
    return rules


def serve(port: int = 8080, host: str = "127.0.0.1", seed: int = 0, symbols=DEFAULT_SYMBOLS,
          start_time=None, clock_rate: float = 1.0, faults: list[dict] | None = None,
          listed=DEFAULT_LISTED, workers: int = 2, threads: int = 8,
          dialect: str = DEFAULT_DIALECT) -> None:
    """Serve until SIGTERM or SIGINT, from the main thread. start_time None = wall-clock now;
    clock_rate 1 = real time. `workers` processes of `threads` threads each share the one
    Simulator made here, before they are forked (its clock, listing, rules and log are shared
    memory). `dialect` is the exchange it speaks: binance or kraken."""
    sim = Simulator(seed=seed, symbols=symbols, now=start_time, clock_rate=clock_rate,
                    faults=faults, listed=listed, dialect=dialect)
    names = sim.state()["symbols"]
    shown = ", ".join(names) if len(names) <= 10 else f"{len(names)} symbols ({', '.join(names[:3])}, …)"
    log.info("exchange simulator (%s dialect) on http://%s:%d, %d process(es) × %d thread(s), "
             "now %s, symbols %s", dialect, host, port, workers, threads, iso(sim.now_ms()), shown)
    _Gunicorn(create_app(sim), {
        "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": threads,
        "graceful_timeout": 1,
        # Longer than a client's pause between requests, so a pooled connection is rarely closed
        # just as the client reuses it (a NetworkError the ingest would have to retry).
        "keepalive": 30,
        "loglevel": "warning", "accesslog": None, "proc_name": "candleflow-exchange-sim",
        # No control socket: its default path is in $HOME, which is read-only in the image.
        "control_socket_disable": True,
        # Heartbeat files on tmpfs where there is one: on a slow overlay filesystem they stall workers.
        # (bandit B108, reviewed: gunicorn's own private heartbeat files, no data.)
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,  # nosec B108
    }).run()


class _Gunicorn(BaseApplication):
    """gunicorn serving an app object built in this process, so the workers inherit it by fork."""

    def __init__(self, app, options: dict):
        self._app, self._options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app

    def run(self) -> None:
        _QuickArbiter(self).run()


class _QuickArbiter(Arbiter):
    """SIGTERM (docker stop, honcho, LocalStack) stops at once, as SIGINT does: a simulator has
    nothing in flight worth waiting for, and gunicorn's graceful stop takes seconds."""

    def handle_term(self):
        self.handle_int()


@contextmanager
def running_simulator(host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                      **simulator_kw) -> Iterator[tuple[str, Simulator]]:
    """Start a simulator on a background thread (a free port by default) and yield
    (base_url, simulator). Keyword arguments go to Simulator: seed, symbols, now
    (default DEFAULT_NOW, frozen: clock_rate 0), clock_rate, faults, listed, dialect."""
    simulator_kw.setdefault("now", DEFAULT_NOW)
    sim = Simulator(**simulator_kw)
    server = make_server(host, port, create_app(sim), threaded=True,
                         request_handler=_QuietHandler if quiet else None)
    thread = threading.Thread(target=server.serve_forever, name="exchange-sim", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}", sim
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """CLI options of `candleflow exchange-sim`."""
    return _parser().parse_args(argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="candleflow exchange-sim",
        description="Offline exchange speaking Binance spot's or Kraken's public REST dialect.")
    parser.add_argument("--dialect", choices=DIALECTS, default=DEFAULT_DIALECT,
                        help="the exchange whose public REST dialect it speaks (compose: $SIM_DIALECT)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a container")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same candles")
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS),
                        help="comma-separated ccxt symbols, e.g. BTC/USD,ETH/USD")
    parser.add_argument("--now", default=None,
                        help="simulated start time, ISO-8601 or ms (default: wall-clock now)")
    parser.add_argument("--clock-rate", type=float, default=1.0,
                        help="simulated seconds per wall second; 0 freezes the clock")
    parser.add_argument("--listed", default=DEFAULT_LISTED,
                        help="first candle time of every market (ISO-8601 or ms)")
    parser.add_argument("--faults", metavar="FILE", help="JSON file of fault rules")
    parser.add_argument("--workers", type=int, default=2,
                        help="server processes; they share one clock, rule set and request log")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    serve(port=args.port, host=args.host, seed=args.seed, symbols=symbols,
          start_time=args.now, clock_rate=args.clock_rate, listed=args.listed,
          faults=load_fault_file(args.faults) if args.faults else None,
          workers=args.workers, threads=args.threads, dialect=args.dialect)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
