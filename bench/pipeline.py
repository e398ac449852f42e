"""Wall time of one `all` run over N instruments (one new bar each) next to Celery's own cost.

Starts real Redis and Postgres, the whole stack as separate processes (Procfile) and
the simulator; primes each instrument with history, advances the simulated clock
by one bar, then times `POST ?task=all` → SUCCESS. The anchor is the same number of
empty tasks, shaped the same way (a chord of three-task chains over the three
queues), through the same Redis and workers.

    .venv/bin/python bench/pipeline.py [--sizes 100,1000] [--history 3100]
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery, chain, chord

from tests.utils.servers import postgres_server, redis_server
from tests.utils.stack import LocalStack

TARGET_1000_S = 30.0
SIM_NOW = "2024-06-01T00:00:00Z"


def empty_chord_seconds(redis_url: str, instruments: int) -> float:
    """The same fan-out as a run, with tasks that do nothing."""
    app = Celery(broker=redis_url, backend=redis_url)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    ping = app.signature("pipeline.ping")
    chains = [chain(ping.clone().set(queue="ingest"), ping.clone().set(queue="indicators"),
                    ping.clone().set(queue="signals")) for _ in range(instruments)]
    started = time.perf_counter()
    result = chord(chains)(ping.clone().set(queue="ingest"))
    result.get(timeout=600)
    return time.perf_counter() - started


def timed_run(stack: LocalStack) -> tuple[float, dict]:
    started = time.perf_counter()
    _, body = stack.trigger("all")
    run = stack.wait_for_run(body["task_id"], timeout=1800)
    return time.perf_counter() - started, run


def bench(size: int, history: int) -> tuple[float, float, str]:
    symbols = [f"C{i:04d}/USD" for i in range(size)]
    with redis_server() as redis_url, postgres_server() as database_url:
        # The simulator has no rate limit; the default 5 requests/s (a real exchange's
        # budget) would make this a benchmark of the limiter.
        env = {"SYNC_LOOKBACK_BARS": str(history), "LOG_LEVEL": "WARNING", "EXCHANGE_RATE_LIMIT_PER_S": "10000"}
        with LocalStack(redis_url, database_url, symbols, SIM_NOW, extra_env=env) as stack:
            prime_s, prime = timed_run(stack)
            print(f"  primed {size} instruments with {history} bars each in {prime_s:.1f} s ({prime['status']})",
                  flush=True)
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{stack.sim_port}/_sim/clock", data=b'{"advance": 3600}',
                headers={"Content-Type": "application/json"}, method="POST"), timeout=10)
            run_s, run = timed_run(stack)
            empty_s = empty_chord_seconds(redis_url, size)
            return run_s, empty_s, run["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--history", type=int, default=3100, help="bars per instrument before the timed run")
    args = parser.parse_args()
    print("pipeline bench: one `all` run, one new bar per instrument (2-core machine, Procfile concurrency)")
    for size in (int(s) for s in args.sizes.split(",")):
        run_s, empty_s, status = bench(size, args.history)
        line = (f"{size:>5} instruments: run {run_s:7.2f} s ({status}), empty tasks {empty_s:6.2f} s, "
                f"ratio {run_s / empty_s:5.1f}x")
        if size == 1000:
            line += f"; target < {TARGET_1000_S:.0f} s: {'met' if run_s < TARGET_1000_S else 'NOT met'}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
