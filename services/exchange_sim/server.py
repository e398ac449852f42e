"""Run the exchange simulator: a blocking serve() for the CLI, running_simulator() for tests."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .controller import DEFAULT_LISTED, DEFAULT_NOW, Simulator, iso
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
          listed=DEFAULT_LISTED) -> None:
    """Serve until interrupted. start_time None = wall-clock now; clock_rate 1 = real time."""
    sim = Simulator(seed=seed, symbols=symbols, now=start_time, clock_rate=clock_rate,
                    faults=faults, listed=listed)
    server = make_server(host, port, create_app(sim), threaded=True)
    log.info("exchange simulator (binance spot dialect) on http://%s:%d, now %s, symbols %s",
             host, server.server_port, iso(sim.now_ms()), ", ".join(sim.state()["symbols"]))
    if threading.current_thread() is threading.main_thread():
        # As PID 1 in a container SIGTERM has no default action; make `docker stop` prompt.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


@contextmanager
def running_simulator(host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                      **simulator_kw) -> Iterator[tuple[str, Simulator]]:
    """Start a simulator on a background thread (a free port by default) and yield
    (base_url, simulator). Keyword arguments go to Simulator: seed, symbols, now
    (default DEFAULT_NOW, frozen: clock_rate 0), clock_rate, faults, listed."""
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
        description="Offline exchange speaking Binance spot's public REST dialect.")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    serve(port=args.port, host=args.host, seed=args.seed, symbols=symbols,
          start_time=args.now, clock_rate=args.clock_rate, listed=args.listed,
          faults=load_fault_file(args.faults) if args.faults else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
