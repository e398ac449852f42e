"""Readiness under load: /api/health and /api/health/live latencies while clients loop on /api/health.

The API runs under gunicorn with the production config (compose/app/gunicorn.conf.py, two
sync workers) against a real Redis and Postgres and one Celery worker, as in the stack.
`--clients` threads request /api/health back to back for `--seconds`; meanwhile one thread
times /api/health/live. Both are printed with their medians and p95, and the ratio of the
liveness median under load to its median with no load (the anchor, measured first in the
same run). Before the background view, each readiness call held a gunicorn worker for the
1 s broadcast timeout: 1.9 req/s, and liveness went from 2 ms to 1-1.5 s.

    .venv/bin/python bench/health.py [--clients 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

__all__ = ["main"]


def _get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def _get_any(url: str) -> float:
    started = time.perf_counter()
    try:
        _get(url)
    except urllib.error.HTTPError as error:  # 503 while not ready is still an answer
        error.read()
    return time.perf_counter() - started


def _figures(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"requests": len(samples), "median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2)}


def _loop(url: str, until: float, out: list[float], call=_get_any) -> None:
    while time.perf_counter() < until:
        out.append(call(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    args = parser.parse_args()

    from services.core.migrate import upgrade_database
    from tests.utils.servers import free_port, postgres_server, redis_server, wait_for_port

    bin_dir = Path(sys.executable).parent
    with redis_server() as redis_url, postgres_server() as database_url:
        upgrade_database(database_url)
        env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ENVIRONMENT": "test",
               "API_TOKEN": "bench-token-0123456789", "LOG_LEVEL": "WARNING", "GUNICORN_WORKERS": "2",
               "PROMETHEUS_MULTIPROC_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-health-{os.getpid()}")}
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
        port = free_port()
        worker = subprocess.Popen([str(bin_dir / "celery"), "-A", "services.core.celery_app", "worker",
                                   "-Q", "pipeline,ingest,indicators,signals", "-c", "1", "--pool", "solo",
                                   "--loglevel", "WARNING"], cwd=ROOT, env=env)
        api = subprocess.Popen([str(bin_dir / "gunicorn"), "-c", str(ROOT / "compose/app/gunicorn.conf.py"),
                                "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
                                "services.api.wsgi:app"], cwd=ROOT, env=env)
        try:
            wait_for_port(port, timeout=60, process=api)
            base = f"http://127.0.0.1:{port}"
            for _ in range(4):  # each gunicorn worker's first readiness call waits for one round of checks
                _get_any(f"{base}/api/health")
            quiet: list[float] = []
            _loop(f"{base}/api/health/live", time.perf_counter() + 3, quiet, _get)
            until = time.perf_counter() + args.seconds
            readiness: list[list[float]] = [[] for _ in range(args.clients)]
            loaders = [threading.Thread(target=_loop, args=(f"{base}/api/health", until, out)) for out in readiness]
            live: list[float] = []
            prober = threading.Thread(target=_loop, args=(f"{base}/api/health/live", until, live, _get))
            for thread in (*loaders, prober):
                thread.start()
            for thread in (*loaders, prober):
                thread.join()
        finally:
            for process in (api, worker):
                process.terminate()
                process.wait(30)

    health = _figures([sample for out in readiness for sample in out])
    anchor, loaded = _figures(quiet), _figures(live)
    health["per_s"] = round(health["requests"] / args.seconds, 1)
    ratio = round(loaded["median_ms"] / anchor["median_ms"], 2)
    print(f"/api/health, {args.clients} clients looping {args.seconds:g} s: {health['per_s']} req/s, "
          f"median {health['median_ms']} ms, p95 {health['p95_ms']} ms")
    print(f"/api/health/live meanwhile: median {loaded['median_ms']} ms, p95 {loaded['p95_ms']} ms; "
          f"alone (anchor): median {anchor['median_ms']} ms; ratio {ratio}")
    if args.json:
        print(json.dumps({"health": health, "live_loaded": loaded, "live_alone": anchor, "ratio": ratio}))


if __name__ == "__main__":
    main()
