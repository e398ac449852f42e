"""API load: triggers (de-duplicated), status polls and read routes at a paced rate, counting 5xx and timing each.

Requests are sent open-loop at `--rate` per second for `--seconds` by `--threads` client threads
(each a fixed share of the schedule, so a slow answer does not slow the offered load down):
one in ten a trigger (`POST /api/manual-update/?task=ohlc&symbol=…`: one run per symbol is queued
before the load starts, so each is a duplicate answered with that run), three a run-status poll, six reads (candles,
indicators, signals, instruments, runs). Printed: achieved rate, answers by status class, and
p50/p95/p99 per kind; the anchor is `/api/health/live`, timed alone before the load (the same
process answering with no database or broker work).

By default it starts its own API (gunicorn with the production config, two workers) on real
Redis and Postgres with three seeded instruments and 500 candles each; `--url` and `--token` aim it
at a running stack instead (e.g. the compose stack: --url http://127.0.0.1:8000 --token $API_TOKEN).

    .venv/bin/python bench/api_load.py [--rate 200] [--seconds 60] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

__all__ = ["main"]

SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")
TOKEN = "bench-token-0123456789"
# One cycle of ten requests: what an operator's dashboards, scripts and curl loops send.
_CYCLE = ("trigger", "status", "candles", "status", "indicators", "signals", "status", "instruments", "runs",
          "candles")


def _request(method: str, url: str, token: str | None) -> tuple[int, float, dict | None]:
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    except OSError:
        return 599, time.perf_counter() - started, None  # no answer at all counts as a server failure
    elapsed = time.perf_counter() - started
    try:
        return status, elapsed, json.loads(body or b"{}")
    except ValueError:
        return status, elapsed, None


class _Load:
    """The request mix against one API, with the run ids its triggers returned for the status polls."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.run_ids: list[str] = []
        self.lock = threading.Lock()

    def send(self, kind: str, n: int) -> tuple[int, float]:
        symbol = SYMBOLS[n % len(SYMBOLS)]
        if kind == "trigger":
            status, elapsed, body = _request("POST", f"{self.base}/api/manual-update/?task=ohlc&symbol={symbol}",
                                             self.token)
            if body and body.get("task_id"):
                with self.lock:
                    self.run_ids.append(body["task_id"])
            return status, elapsed
        if kind == "status":
            with self.lock:
                run_id = self.run_ids[n % len(self.run_ids)] if self.run_ids else "none"
            return _request("GET", f"{self.base}/api/runs/{run_id}", self.token)[:2]
        path = {"candles": f"/api/candles?symbol={symbol}&limit=100",
                "indicators": f"/api/indicators?symbol={symbol}&limit=100&columns=rsi,adx",
                "signals": f"/api/signals?symbol={symbol}&limit=50", "instruments": "/api/instruments",
                "runs": "/api/runs?limit=20"}[kind]
        return _request("GET", f"{self.base}{path}", self.token)[:2]


def _paced(load: _Load, start: float, rate: float, seconds: float, offset: int, step: int,
           out: list[tuple[str, int, float]]) -> None:
    n = offset
    while n / rate < seconds:
        due = start + n / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        kind = _CYCLE[n % len(_CYCLE)]
        status, elapsed = load.send(kind, n)
        out.append((kind, status, elapsed))
        n += step


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)
    return {"n": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


@contextmanager
def _own_api():
    """An API under gunicorn (production config) on fresh servers, three instruments of 500 candles."""
    from sqlalchemy import create_engine

    from services.core.migrate import upgrade_database
    from services.core.store.instruments import seed_instruments
    from tests.integration.api.rows import add_candles
    from tests.utils.servers import free_port, postgres_server, redis_server, wait_for_port

    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server())
        database_url = stack.enter_context(postgres_server())
        upgrade_database(database_url)
        engine = create_engine(database_url)
        with engine.begin() as conn:
            seed_instruments(conn, "binance", list(SYMBOLS), ["1h"])
        for instrument_id in range(1, len(SYMBOLS) + 1):
            add_candles(engine, instrument_id, 500)
        engine.dispose()
        metrics = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-api-load-{os.getpid()}"
        metrics.mkdir(exist_ok=True)
        env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ENVIRONMENT": "test",
               "EXCHANGE": "binance", "API_TOKEN": TOKEN, "LOG_LEVEL": "WARNING", "GUNICORN_WORKERS": "2",
               "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        port = free_port()
        api = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                                str(ROOT / "compose/app/gunicorn.conf.py"), "-b", f"127.0.0.1:{port}",
                                "--access-logfile", "/dev/null", "services.api.wsgi:app"], cwd=ROOT, env=env)
        try:
            wait_for_port(port, timeout=60, process=api)
            yield f"http://127.0.0.1:{port}", TOKEN
        finally:
            api.terminate()
            api.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--url", help="a running API (default: start one)")
    parser.add_argument("--token", help="its API_TOKEN (with --url)")
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    args = parser.parse_args()

    with ExitStack() as stack:
        base, token = (args.url.rstrip("/"), args.token) if args.url else stack.enter_context(_own_api())
        anchor = [_request("GET", f"{base}/api/health/live", None)[1] for _ in range(200)]
        load = _Load(base, token)
        for n in range(len(SYMBOLS)):  # one run per symbol queued first: the load's triggers are its duplicates
            load.send("trigger", n)
        samples: list[list[tuple[str, int, float]]] = [[] for _ in range(args.threads)]
        start = time.perf_counter() + 0.5
        threads = [threading.Thread(target=_paced, args=(load, start, args.rate, args.seconds, i, args.threads,
                                                         samples[i])) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.perf_counter() - start

    answers = [sample for out in samples for sample in out]
    classes = {f"{code}xx": sum(1 for _, status, _ in answers if status // 100 == code) for code in (2, 4, 5)}
    per_kind = {kind: _percentiles([e for k, _, e in answers if k == kind]) for kind in dict.fromkeys(_CYCLE)}
    overall = _percentiles([e for _, _, e in answers])
    live = _percentiles(anchor)
    achieved = round(len(answers) / took, 1)
    print(f"offered {args.rate:g} req/s for {args.seconds:g} s with {args.threads} threads: {len(answers)} requests, "
          f"achieved {achieved} req/s; answers {classes}")
    for kind, figures in per_kind.items():
        print(f"  {kind:<12} n={figures['n']:<6} p50 {figures['p50_ms']:>7} ms  p95 {figures['p95_ms']:>7} ms  "
              f"p99 {figures['p99_ms']:>7} ms")
    print(f"  {'all':<12} n={overall['n']:<6} p50 {overall['p50_ms']:>7} ms  p95 {overall['p95_ms']:>7} ms  "
          f"p99 {overall['p99_ms']:>7} ms")
    print(f"anchor /api/health/live alone: p50 {live['p50_ms']} ms, p99 {live['p99_ms']} ms; "
          f"p99 under load / anchor p99: {round(overall['p99_ms'] / max(live['p99_ms'], 0.1), 1)}")
    if args.json:
        print(json.dumps({"achieved_per_s": achieved, "answers": classes, "per_kind": per_kind, "all": overall,
                          "anchor": live}))


if __name__ == "__main__":
    main()
