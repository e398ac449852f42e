"""Wall time of one `all` run over N instruments (one new bar each) next to Celery's own cost per instrument.

Starts real Redis and Postgres, the whole stack as separate processes (Procfile) and the
simulator; primes every instrument with --history bars (the first `all` run, bounded by
--prime-timeout), advances the simulated clock by one bar, then times `POST ?task=all` →
ready. Beside it, from the same stack and the same run of this script:

* the anchor: the same per-instrument fan-out of empty tasks (a chord of one three-task
  chain per instrument over the ingest, indicators and signals queues), what Celery alone
  costs per instrument, the floor of the old one-chain-per-instrument design;
* peak worker RSS: the largest sum of RSS over one worker's main and pool processes,
  sampled from /proc in a background thread during the timed run;
* the simulator's request rate on the page shape the timed run asks for (the latest two
  bars, rotating over the instruments), by a short bounded wrk run, or a bounded Python
  burst when wrk is missing; loopback only.

    .venv/bin/python bench/pipeline.py [--sizes 100,1000] [--history 3100] [--batch-size 50] [--json]
    .venv/bin/python bench/pipeline.py --sizes 10000 --history 300 --json

With --json the last line is {"sizes": [{"instruments", "seconds", "anchor_seconds", "ratio",
"peak_rss_mb", "sim_requests_per_s", ...}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery, chain, chord

from tests.utils.servers import postgres_server, redis_server
from tests.utils.stack import LocalStack, http

SIM_NOW = "2024-06-01T00:00:00Z"
HOUR_MS = 3_600_000
# Issue #15's targets: the run beside the old design's floor (Celery's per-instrument fan-out).
TARGETS = {1000: (10.0, 20.0), 10_000: (100.0, 200.0)}  # instruments: (target s, floor s)
RSS_TARGET_MB, RSS_TARGET_AT = 500.0, 10_000
WORKERS = ("worker-ingest", "worker-indicators", "worker-signals")


def empty_chord_seconds(redis_url: str, instruments: int, timeout: float) -> float:
    """The same fan-out as a run of the old design, with tasks that do nothing."""
    app = Celery(broker=redis_url, backend=redis_url)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    ping = app.signature("pipeline.ping")
    chains = [chain(ping.clone().set(queue="ingest"), ping.clone().set(queue="indicators"),
                    ping.clone().set(queue="signals")) for _ in range(instruments)]
    started = time.perf_counter()
    result = chord(chains)(ping.clone().set(queue="ingest"))
    result.get(timeout=timeout)
    return time.perf_counter() - started


def timed_run(stack: LocalStack, timeout: float) -> tuple[float, dict]:
    """POST an `all` run and wait for it. Each poll reads the run's record, which names every
    instrument (1.4 MB at 10,000), so polls thin out as the run goes on: every 1 % of the time
    elapsed (0.1 to 2 s), so the figure is at most 1 % late and polling costs next to nothing."""
    started = time.perf_counter()
    _, body = stack.trigger("all")
    deadline = started + timeout
    while time.perf_counter() < deadline:
        status, run = http("GET", f"{stack.api}/api/manual-update/?task_id={body['task_id']}", timeout=60)
        if status == 200 and run["ready"]:
            return time.perf_counter() - started, run
        time.sleep(min(2.0, max(0.1, 0.01 * (time.perf_counter() - started))))
    raise TimeoutError(f"run {body['task_id']} not ready after {timeout:.0f} s; logs in {stack.logs}")


def _children() -> dict[int, list[int]]:
    """Parent pid → child pids, from one pass over /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            # The command name in parentheses may hold spaces; the parent pid follows it.
            tree.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and its descendants so far (live ones: a pool process
    that exited takes its time along unless its parent reaped it)."""
    tree, ticks, stack = _children(), 0, [root]
    while stack:
        pid = stack.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        stack.extend(tree.get(pid, ()))
    return ticks / os.sysconf("SC_CLK_TCK")


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; PSS shares each page among the processes mapping it."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0  # gone meanwhile
    found = dict(re.findall(r"^(Rss|Pss):\s+(\d+) kB", rollup, re.MULTILINE))
    return int(found.get("Rss", 0)), int(found.get("Pss", 0))


def tree_memory_mb(root: int, tree: dict[int, list[int]]) -> tuple[float, float]:
    """(RSS, PSS) summed over a process and all its descendants. The RSS sum counts pages
    shared after fork once per process (an upper bound); the PSS sum counts them once."""
    rss = pss = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        one_rss, one_pss = _memory_kb(pid)
        rss, pss = rss + one_rss, pss + one_pss
        stack.extend(tree.get(pid, ()))
    return rss / 1024, pss / 1024


class MemorySampler(threading.Thread):
    """Samples each worker's process tree every `interval` s; keeps the largest RSS and PSS sums seen."""

    def __init__(self, roots: dict[str, int], interval: float = 0.25):
        super().__init__(name="memory-sampler", daemon=True)
        self.roots, self.interval = roots, interval
        self.peak_rss, self.peak_pss, self.peak_worker = 0.0, 0.0, ""
        self.first_rss: dict[str, float] = {}  # each worker's RSS sum at the first sample
        self._done = threading.Event()

    def sample(self) -> None:
        tree = _children()
        for name, pid in self.roots.items():
            rss, pss = tree_memory_mb(pid, tree)
            self.first_rss.setdefault(name, rss)
            if rss > self.peak_rss:
                self.peak_rss, self.peak_worker = rss, name
            self.peak_pss = max(self.peak_pss, pss)

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join(10)
        self.sample()


def sim_request_rate(port: int, symbols: list[str], limit: int = 2, seconds: float = 3.0,
                     server: int | None = None) -> tuple[float, float | None, str]:
    """(requests a second, CPU ms per request of the `server` process tree if given, tool) for
    pages of the latest `limit` bars (2: what the timed run asks for), rotating over the
    instruments: wrk, 8 connections, `seconds` long; else a bounded Python burst. The CPU
    figure holds however busy the machine is; the rate does not."""
    since = _sim_now_ms(port) - (limit - 1) * HOUR_MS
    paths = [f"/api/v3/klines?symbol={s.replace('/', '')}&interval=1h&startTime={since}&limit={limit}"
             for s in symbols]
    served, cpu = _klines_count(port), tree_cpu_seconds(server) if server else 0.0
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write("local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
                         "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                         "  return wrk.format(nil, paths[i])\nend\n")
        try:
            out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds:.0f}s", "-s", script.name,
                                  f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                                 timeout=seconds + 30, check=True).stdout
        finally:
            os.unlink(script.name)
        if "Non-2xx" in out:
            raise RuntimeError(f"the simulator answered errors during the rate check:\n{out}")
        rate, tool = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "wrk -t1 -c8"
    else:
        rate, tool = _python_burst(port, paths, seconds), "python, 8 threads"
    cpu_ms = None
    if server:
        cpu_ms = 1000 * (tree_cpu_seconds(server) - cpu) / max(1, _klines_count(port) - served)
    return rate, cpu_ms, tool


def _klines_count(port: int) -> int:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/_sim/requests")
    return json.loads(connection.getresponse().read())["counts"].get("/api/v3/klines", 0)


def _sim_now_ms(port: int) -> int:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/api/v3/time")
    return json.loads(connection.getresponse().read())["serverTime"]


def _python_burst(port: int, paths: list[str], seconds: float, limit: int = 5000) -> float:
    """At most `limit` requests over at most `seconds`, 8 keep-alive connections."""
    done, lock, deadline = [0], threading.Lock(), time.perf_counter() + seconds

    def client(offset: int) -> None:
        connection = HTTPConnection("127.0.0.1", port, timeout=10)
        i = offset
        while time.perf_counter() < deadline:
            with lock:
                if done[0] >= limit:
                    return
                done[0] += 1
            connection.request("GET", paths[i % len(paths)])
            connection.getresponse().read()
            i += 8

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0] / (time.perf_counter() - started)


def bench(size: int, history: int, batch_size: int | None, prime_timeout: float, run_timeout: float) -> dict:
    symbols = [f"C{i:04d}/USD" for i in range(size)]
    with redis_server() as redis_url, postgres_server() as database_url:
        # The simulator has no rate limit; the default 5 requests/s (a real exchange's
        # budget) would make this a benchmark of the limiter.
        env = {"SYNC_LOOKBACK_BARS": str(history), "LOG_LEVEL": "WARNING", "EXCHANGE_RATE_LIMIT_PER_S": "10000"}
        if batch_size:
            env["PIPELINE_BATCH_SIZE"] = str(batch_size)
        with LocalStack(redis_url, database_url, symbols, SIM_NOW, extra_env=env) as stack:
            prime_s, prime = timed_run(stack, prime_timeout)
            print(f"  primed {size} instruments with {history} bars each in {prime_s:.1f} s ({prime['status']})",
                  flush=True)
            _post_json(stack.sim_port, "/_sim/clock", {"advance": 3600})
            before, sim = _klines_count(stack.sim_port), stack.processes["exchange-sim"].pid
            sim_cpu = tree_cpu_seconds(sim)
            sampler = MemorySampler({name: stack.processes[name].pid for name in WORKERS})
            sampler.sample()  # imports and pools before the run: what the run adds is the rest
            sampler.start()
            try:
                run_s, run = timed_run(stack, run_timeout)
            finally:
                sampler.stop()
            fetched, sim_cpu = _klines_count(stack.sim_port) - before, tree_cpu_seconds(sim) - sim_cpu
            anchor_s = empty_chord_seconds(redis_url, size, timeout=max(600.0, run_timeout))
            rate, cpu_ms, tool = sim_request_rate(stack.sim_port, symbols, server=sim)
            page_rate, page_cpu_ms, _ = sim_request_rate(stack.sim_port, symbols, limit=1000, server=sim)
            load = os.getloadavg()[0]
    return {"instruments": size, "seconds": round(run_s, 2), "anchor_seconds": round(anchor_s, 2),
            "ratio": round(run_s / anchor_s, 3), "peak_rss_mb": round(sampler.peak_rss, 1),
            "sim_requests_per_s": round(rate, 1), "status": run["status"], "history": history,
            "batch_size": batch_size, "prime_seconds": round(prime_s, 1), "peak_rss_worker": sampler.peak_worker,
            "idle_rss_mb": round(sampler.first_rss[sampler.peak_worker], 1), "peak_pss_mb": round(sampler.peak_pss, 1),
            "sim_klines_requests": fetched, "sim_cpu_seconds_in_run": round(sim_cpu, 2),
            "sim_cpu_ms_per_request": round(cpu_ms, 2), "sim_rate_tool": tool,
            "sim_page1000_requests_per_s": round(page_rate, 1),
            "sim_page1000_cpu_ms_per_request": round(page_cpu_ms, 2),
            "load_average_1m": round(load, 2), "stage_seconds": stage_seconds(run)}


def stage_seconds(run: dict) -> dict[str, float]:
    """Seconds of stage work per stage, summed over batch tasks: each instrument's entry carries
    its batch's time and size, so an entry weighs seconds / batch."""
    totals: dict[str, float] = {}
    for entry in run.get("result") or []:
        if isinstance(entry, dict) and entry.get("seconds") is not None and entry.get("batch"):
            totals[entry["stage"]] = totals.get(entry["stage"], 0.0) + entry["seconds"] / entry["batch"]
    return {stage: round(total, 1) for stage, total in totals.items()}


def _post_json(port: int, path: str, body: dict) -> dict:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return json.loads(connection.getresponse().read())


def describe(figures: dict) -> list[str]:
    """The human-readable lines of one size: each figure beside its target."""
    size, run_s, f = figures["instruments"], figures["seconds"], figures
    lines = [f"{size:>6} instruments: run {run_s:7.2f} s ({f['status']}), "
             f"empty fan-out {f['anchor_seconds']:7.2f} s (ratio {f['ratio']:.2f}×)"]
    if size in TARGETS:
        target, floor = TARGETS[size]
        lines.append(f"        target ≤ {target:.0f} s (old design's floor {floor:.0f} s): "
                     f"{'met' if run_s <= target else 'NOT met'}")
    rss = (f"        peak worker RSS {f['peak_rss_mb']:.0f} MB ({f['peak_rss_worker']}, main + pool processes; "
           f"{f['idle_rss_mb']:.0f} MB before the run; PSS {f['peak_pss_mb']:.0f} MB)")
    if size == RSS_TARGET_AT:
        rss += f"; target ≤ {RSS_TARGET_MB:.0f} MB: {'met' if f['peak_rss_mb'] <= RSS_TARGET_MB else 'NOT met'}"
    lines.append(rss)
    if f["stage_seconds"]:
        work = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in f["stage_seconds"].items())
        lines.append(f"        stage work, summed over batch tasks: {work} "
                     f"(2 cores: {2 * run_s:.0f} core-seconds in the run)")
    lines.append(f"        simulator {f['sim_requests_per_s']:.0f} requests/s on the run's page ({f['sim_rate_tool']}, "
                 f"{f['sim_cpu_ms_per_request']:.2f} ms CPU each); in the run it served {f['sim_klines_requests']} "
                 f"klines requests on {f['sim_cpu_seconds_in_run']:.1f} s CPU")
    lines.append(f"        simulator on 1000-bar pages (priming's): {f['sim_page1000_requests_per_s']:.0f} requests/s, "
                 f"{f['sim_page1000_cpu_ms_per_request']:.2f} ms CPU each; "
                 f"1-min load average {f['load_average_1m']:.1f} (2 cores)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="comma-separated instrument counts, up to 10000")
    parser.add_argument("--history", type=int, default=3100, help="bars per instrument primed before the timed run "
                        "(300 keeps 10,000 instruments affordable)")
    parser.add_argument("--batch-size", type=int, default=None, help="PIPELINE_BATCH_SIZE for the stack "
                        "(default: the stack's own, 50)")
    parser.add_argument("--prime-timeout", type=float, default=1800.0, help="give up priming after this many s")
    parser.add_argument("--run-timeout", type=float, default=900.0, help="give up the timed run after this many s")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line last")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) > 10_000:
        parser.error("sizes up to 10000 (the symbols C0000/USD..C9999/USD)")
    print(f"pipeline bench: one `all` run, one new bar per instrument, {args.history} bars of history "
          f"(2-core machine, Procfile concurrency)", flush=True)
    results = []
    for size in sizes:
        figures = bench(size, args.history, args.batch_size, args.prime_timeout, args.run_timeout)
        results.append(figures)
        print("\n".join(describe(figures)), flush=True)
    if args.json:
        print(json.dumps({"sizes": results}))


if __name__ == "__main__":
    main()
