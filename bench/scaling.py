"""Throughput of an `all` run (instruments per second, one new bar each) against the number of worker containers.

Starts its own compose project (`candleflow-scale`, free ports, the demo simulator with a frozen
clock, no beat: nothing but the bench starts runs), primes every instrument with --history bars
(the first `all` run), then for each count in --workers scales worker-ingest, worker-indicators
and worker-signals to that many containers (`docker compose up --scale`, one process each),
advances the simulated clock by one bar and times `POST ?task=all` → ready, --runs times.
Beside each run: the CPU seconds every container of the project used (cgroup cpuacct), the peak
of Postgres client connections (sampled), and the machine's load average, because the 2 cores
are shared with whatever else runs. The project is taken down (volumes too) at the end.

    set -a; eval "$(compose/select-images)"; set +a      # which images, as `make images` picks them
    .venv/bin/python bench/scaling.py [--workers 1,2,3,4] [--instruments 1000] [--history 300] [--json]

With --json the last line is {"instruments", "batch_size", "prime_seconds", "levels": [{"workers",
"runs": [{"seconds", "instruments_per_s", "cpu_seconds", "peak_connections", "load"}, ...]}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery
from sqlalchemy import create_engine, text

from tests.e2e.stack import ComposeStack, http, pick_ports

PROJECT = "candleflow-scale"
TOKEN = "scale-bench-token"
SIM_NOW = "2024-06-01T00:00:00Z"
WORKER_SERVICES = ("worker-ingest", "worker-indicators", "worker-signals")
SERVICES = ("api", "exchange-sim", *WORKER_SERVICES)  # and what they depend on: redis, postgres, migrate
CPUACCT = Path("/sys/fs/cgroup/cpuacct/docker")  # cgroup v1, as on this machine; v2 has no per-container file here
# The simulator's clock stands still, so every level's run sees one new bar; its listing is SYMBOLS.
OVERRIDE = f"""services:
  exchange-sim:
    command: start-exchange-sim --now {SIM_NOW} --clock-rate 0
"""


def compose_stack(workdir: Path, instruments: int, history: int, batch_size: int) -> ComposeStack:
    """The bench's project: its env file (ports, universe, settings) and the frozen-clock override."""
    ports = pick_ports()
    settings = {**ports, "SYMBOLS": ",".join(f"C{i:04d}/USD" for i in range(instruments)),
                "SYNC_LOOKBACK_BARS": str(history), "PIPELINE_BATCH_SIZE": str(batch_size),
                # The simulator has no rate limit; a real exchange's 5 requests/s would make this a
                # benchmark of the shared limiter (docs/scaling.md counts it separately).
                "EXCHANGE_RATE_LIMIT_PER_S": "10000", "EXCHANGE_CLOCK_RECHECK_S": "0",
                "LOG_LEVEL": "WARNING", "API_TOKEN": TOKEN}
    env_file = workdir / "scale.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    override = workdir / "frozen-clock.yml"
    override.write_text(OVERRIDE)
    env = {key: value for key, value in os.environ.items() if key not in settings}
    return ComposeStack(PROJECT, env_file, {**env, **ports}, files=("docker-compose.yml", str(override)))


def scale_to(stack: ComposeStack, workers: int) -> None:
    """Every worker service at `workers` containers, healthy, each answering a ping."""
    flags = [arg for service in WORKER_SERVICES for arg in ("--scale", f"{service}={workers}")]
    stack.compose("up", "-d", "--no-recreate", *flags, *SERVICES, timeout=900)
    stack.wait_healthy(set(SERVICES) | {"redis", "postgres", "migrate"}, timeout=600)
    control = Celery(broker=f"redis://127.0.0.1:{stack.env['REDIS_PORT']}/0")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            answered = [name for reply in control.control.ping(timeout=2.0) for name in reply]
            if all(sum(name.startswith(f"{s.split('-')[1]}@") for name in answered) == workers
                   for s in WORKER_SERVICES):
                return
        raise RuntimeError(f"not {workers} workers per queue after 120 s: {sorted(answered)}")
    finally:
        control.close()


def container_cpu_seconds(stack: ComposeStack) -> float:
    """CPU time every running container of the project has used so far."""
    ids = stack.compose("ps", "--quiet").stdout.split()
    total = 0
    for container in ids:
        full = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", container], capture_output=True,
                              text=True, check=True).stdout.strip()
        usage = CPUACCT / full / "cpuacct.usage"
        total += int(usage.read_text()) if usage.exists() else 0
    return total / 1e9


class ConnectionSampler(threading.Thread):
    """The largest number of Postgres client connections seen, every 0.2 s."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="connections", daemon=True)
        self.engine = create_engine(database_url, pool_size=1, max_overflow=0)
        self.peak, self._done = 0, threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self._done.is_set():
                conn.execute(text("SELECT pg_stat_clear_snapshot()"))
                count = conn.execute(text(
                    "SELECT count(*) - 1 FROM pg_stat_activity WHERE backend_type = 'client backend'")).scalar_one()
                self.peak = max(self.peak, count)  # less our own
                conn.commit()
                self._done.wait(0.2)

    def stop(self) -> int:
        self._done.set()
        self.join(10)
        self.engine.dispose()
        return self.peak


def timed_run(stack: ComposeStack, timeout: float) -> tuple[float, dict]:
    """POST an `all` run and poll it (polls thin out as the run goes on) until it is ready."""
    started = time.perf_counter()
    reply = http("POST", stack.url("API_PORT", "/api/manual-update/?task=all"), token=TOKEN)
    if reply.status != 202:
        raise RuntimeError(f"trigger refused: {reply.status} {reply.text[:300]}")
    task_id = reply.body["task_id"]
    while time.perf_counter() < started + timeout:
        poll = http("GET", stack.url("API_PORT", f"/api/manual-update/?task_id={task_id}"), token=TOKEN, timeout=60)
        if poll.status == 200 and poll.body["ready"]:
            return time.perf_counter() - started, poll.body
        time.sleep(min(2.0, max(0.1, 0.01 * (time.perf_counter() - started))))
    raise TimeoutError(f"run {task_id} not ready after {timeout:.0f} s")


def measured_run(stack: ComposeStack, instruments: int, database_url: str, timeout: float) -> dict:
    """One new bar, then one timed `all` run, with its CPU, connections and load."""
    reply = http("POST", stack.url("SIM_PORT", "/_sim/clock"), body={"advance": 3600})
    if reply.status != 200:
        raise RuntimeError(f"the simulator's clock did not move: {reply.status} {reply.text[:200]}")
    load_before, cpu_before = os.getloadavg()[0], container_cpu_seconds(stack)
    sampler = ConnectionSampler(database_url)
    sampler.start()
    try:
        seconds, run = timed_run(stack, timeout)
    finally:
        peak = sampler.stop()
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"the run ended {run['status']}: {str(run.get('error'))[:500]}")
    return {"seconds": round(seconds, 2), "instruments_per_s": round(instruments / seconds, 1),
            "cpu_seconds": round(container_cpu_seconds(stack) - cpu_before, 1), "peak_connections": peak,
            "load": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def bench(workers: list[int], instruments: int, history: int, batch_size: int, runs: int,
          prime_timeout: float, run_timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="cf-scale-") as workdir:
        stack = compose_stack(Path(workdir), instruments, history, batch_size)
        database_url = (f"postgresql+psycopg2://candleflow:candleflow@127.0.0.1:{stack.env['POSTGRES_PORT']}"
                        "/candleflow")
        try:
            scale_to(stack, workers[0])
            prime_s, prime = timed_run(stack, prime_timeout)
            print(f"primed {instruments} instruments with {history} bars in {prime_s:.1f} s ({prime['status']})",
                  flush=True)
            levels = []
            for count in workers:
                scale_to(stack, count)
                measured = [measured_run(stack, instruments, database_url, run_timeout) for _ in range(runs)]
                levels.append({"workers": count, "runs": measured})
                print(f"{count} worker container(s) per stage: "
                      + ", ".join(f"{m['seconds']} s ({m['instruments_per_s']}/s, {m['cpu_seconds']} CPU-s, "
                                  f"{m['peak_connections']} connections, load {m['load'][0]}→{m['load'][1]})"
                                  for m in measured), flush=True)
        finally:
            stack.compose("down", "--volumes", "--remove-orphans", check=False, timeout=600)
    return {"instruments": instruments, "batch_size": batch_size, "history": history,
            "prime_seconds": round(prime_s, 1), "levels": levels}


def _counts(value: str) -> list[int]:
    counts = [int(part) for part in value.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("--workers takes positive counts, e.g. 1,2,3,4")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=_counts, default=[1, 2, 3, 4], help="containers per worker service")
    parser.add_argument("--instruments", type=int, default=1000)
    parser.add_argument("--history", type=int, default=300, help="bars each instrument is primed with")
    parser.add_argument("--batch-size", type=int, default=50, help="PIPELINE_BATCH_SIZE")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per worker count")
    parser.add_argument("--prime-timeout", type=float, default=1800.0)
    parser.add_argument("--run-timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for name in ("instruments", "history", "batch_size", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    result = bench(args.workers, args.instruments, args.history, args.batch_size, args.runs,
                   args.prime_timeout, args.run_timeout)
    for level in result["levels"]:
        rates = [run["instruments_per_s"] for run in level["runs"]]
        print(f"workers={level['workers']}: median {statistics.median(rates):.1f} instruments/s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
