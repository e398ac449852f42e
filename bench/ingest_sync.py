"""One process syncing N instruments (one new bar each) batch by batch: where ingest's time and memory go.

Starts real Redis and Postgres and the simulator (its own processes, as in the stack),
builds the worker's ingest path (ccxt binance client, the shared Redis limiter at a
lifted rate, as bench/pipeline.py sets it), primes every instrument with --history bars,
then advances the simulated clock one bar and times `sync_batch` over batches of
--batch-size, twice, interleaved:

* announced: the batch announces its requests (`SharedRateLimiter.ahead`), so one Redis
  round trip reserves several slots (what the worker does);
* one slot per request: the same limiter without the announcement (the anchor, what the
  worker did before).

Also prints the process's RSS before and after ccxt loads the market list of N markets,
and the limiter's Redis round trips per request.

    .venv/bin/python bench/ingest_sync.py [--instruments 1000] [--history 5] [--batch-size 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from sqlalchemy import create_engine

from services.core.migrate import upgrade_database
from services.ingest.fetching import IngestContext, sync_batch
from services.ingest.ratelimit import SharedRateLimiter
from services.ingest.retry import RetryPolicy
from services.ingest.sources.ccxt_source import CcxtSource
from tests.utils.servers import free_port, postgres_server, redis_server, wait_for_port

SIM_NOW = "2024-06-01T00:00:00Z"
RATE_PER_S = 10_000  # bench/pipeline.py's EXCHANGE_RATE_LIMIT_PER_S: the simulator has no limit
THREADS = 8  # INGEST_FETCH_THREADS' default


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def advance_clock(port: int, seconds: int) -> None:
    import json
    from http.client import HTTPConnection

    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/_sim/clock", json.dumps({"advance": seconds}), {"Content-Type": "application/json"})
    connection.getresponse().read()


def sync_all(ctx: IngestContext, symbols: list[str], batch_size: int, history: int) -> float:
    started = time.perf_counter()
    for first in range(0, len(symbols), batch_size):
        outcomes = sync_batch(ctx, symbols[first:first + batch_size], "1h", history, THREADS)
        failed = [symbol for symbol, outcome in outcomes.items() if isinstance(outcome, Exception)]
        if failed:
            raise RuntimeError(f"sync failed for {failed[:3]}: {outcomes[failed[0]]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=1000)
    parser.add_argument("--history", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    symbols = [f"C{i:04d}/USD" for i in range(arguments.instruments)]
    port = free_port()
    with redis_server() as redis_url, postgres_server() as database_url, contextlib.ExitStack() as stack:
        upgrade_database(database_url)
        sim = subprocess.Popen(
            [str(Path(sys.executable).parent / "candleflow"), "exchange-sim", "--host", "127.0.0.1",
             "--port", str(port), "--symbols", ",".join(symbols), "--now", SIM_NOW, "--clock-rate", "0"],
            stdout=subprocess.DEVNULL,
        )
        stack.callback(sim.wait)
        stack.callback(sim.terminate)
        wait_for_port(port, process=sim)
        client = redis.Redis.from_url(redis_url)
        limiter = SharedRateLimiter(client, "binance", RATE_PER_S)
        before_markets = rss_mb()
        source = CcxtSource("binance", f"http://127.0.0.1:{port}", 10_000, throttle=limiter.acquire,
                            clock_recheck_s=0, reserve=limiter.ahead)
        source.check_instrument(symbols[0], "1h")
        after_markets = rss_mb()
        engine = create_engine(database_url)
        policy = RetryPolicy(retries=2, base_s=0.01, cap_s=0.05)
        ctx = IngestContext(source=source, engine=engine, policy=policy)
        prime = sync_all(ctx, symbols, arguments.batch_size, arguments.history)
        print(f"ingest sync, {len(symbols):,} instruments, batches of {arguments.batch_size}, {THREADS} threads, "
              f"limiter at {RATE_PER_S:,}/s; primed {arguments.history} bars each in {prime:.1f} s")
        print(f"    RSS {before_markets:.0f} MB before the market list, {after_markets:.0f} MB after "
              f"({after_markets - before_markets:+.0f} MB for {len(symbols):,} markets)")
        # The anchor: the same limiter, never told what is coming (a second client, its own market list).
        unannounced = CcxtSource("binance", f"http://127.0.0.1:{port}", 10_000, throttle=limiter.acquire,
                                 clock_recheck_s=0)
        unannounced.check_instrument(symbols[0], "1h")
        contexts = (("announced", ctx), ("one slot per request", IngestContext(unannounced, engine, policy)))
        for _ in range(arguments.rounds):
            for label, context in contexts:
                advance_clock(port, 3600)
                trips, cpu = limiter.round_trips, time.process_time()
                wall = sync_all(context, symbols, arguments.batch_size, arguments.history)
                cpu, trips = time.process_time() - cpu, limiter.round_trips - trips
                print(f"    {label:>22}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
                      f"{trips:,} limiter round trips ({trips / len(symbols):.2f} per instrument)")
        print(f"    RSS at the end {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
