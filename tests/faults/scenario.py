"""One fault scenario against the compose stack: start a run, hit it, wait for the end, and judge the figures."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text

from services.core.pipeline.stages import KIND_STAGES
from tests.e2e.stack import ComposeStack, http
from tests.faults.figures import TERMINAL_STATES, Expected, Row, non_terminal_runs, stored_figures

__all__ = ["API_TOKEN", "RUN_BOUND_S", "Scenario", "docker"]

API_TOKEN = "faults-token"
# An undisturbed `all` run over the suite's instruments ends in well under a minute on the 2-core VM;
# a fault may cost a retry backoff (Celery's capped at 120 s) on top.
RUN_BOUND_S = 240.0
# Tables a run writes: emptied before each scenario so it fetches and computes everything again.
_RUN_TABLES = ("candles", "indicator_values", "indicator_state", "patterns", "levels", "signals",
               "stage_watermarks", "fetch_ledger", "rejected_candles")


def docker(*args: str, timeout: float = 180) -> str:
    """A plain `docker` command on one container, as an operator would type it; what it printed."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"`docker {' '.join(args)}` failed: {result.stderr[-2000:]}")
    return result.stdout + result.stderr


@dataclass
class Scenario:
    """The stack, the expectations and the row of the figures table one test fills."""

    stack: ComposeStack
    engine: Engine
    expected: Expected
    symbols: list[str]
    timeframe: str
    row: Row
    log_dir: Path
    problems: list[str] = field(default_factory=list)

    def reset_data(self) -> None:
        """Start from no market data, so this scenario's run does every fetch and computation itself."""
        with self.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(_RUN_TABLES)}"))  # nosec B608 (constant table names)

    def container(self, service: str) -> str:
        names = [c["Name"] for c in self.stack.containers() if c["Service"] == service]
        assert len(names) == 1, f"{service}: {names}"
        return names[0]

    def submit(self, kind: str = "all") -> tuple[str, bool]:
        """POST a run over the scenario's instruments: (run id, whether it was a duplicate)."""
        reply = http("POST", self.stack.url("API_PORT", f"/api/manual-update/?task={kind}"
                                            f"&symbol={','.join(self.symbols)}&timeframe={self.timeframe}"),
                     token=API_TOKEN)
        assert reply.status in (200, 202), reply.text
        return reply.body["task_id"], reply.body["duplicate"]

    def status(self, run_id: str) -> dict | None:
        try:
            reply = http("GET", self.stack.url("API_PORT", f"/api/manual-update/?task_id={run_id}"), timeout=5)
        except OSError:  # the API itself is restarting
            return None
        return reply.body if reply.status == 200 else None

    def wait_mid_run(self, run_id: str, timeout: float = 120.0, results: int = 1) -> None:
        """Until the run has recorded `results` stage results: its work has started and is not done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                done = conn.execute(text("SELECT count(*) FROM pipeline_stage_results WHERE run_id = :id"),
                                    {"id": run_id}).scalar_one()
            if done >= results:
                return
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} recorded no stage within {timeout:.0f} s: {self.status(run_id)}")

    def before_fault(self, run_id: str) -> str:
        """How far the run is as the fault comes ("k/n stage results"); a run already finished is a missed fault."""
        with self.engine.connect() as conn:
            done = conn.execute(text("SELECT count(*) FROM pipeline_stage_results WHERE run_id = :id"),
                                {"id": run_id}).scalar_one()
            state = conn.execute(text("SELECT state FROM pipeline_runs WHERE id = :id"), {"id": run_id}).scalar()
        if state in TERMINAL_STATES:
            self.problems.append(f"the fault came too late: run {run_id} had already ended {state}")
        return f"{done}/{len(self.symbols) * len(KIND_STAGES['all'])} stages"

    def failed_windows(self) -> int:
        """Fetch windows the ledger holds as failed (waiting for the repair job)."""
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM fetch_ledger WHERE status = 'failed'")).scalar_one()

    def repair(self, bound: float) -> None:
        """Run the repair job once and wait until the ledger holds no failed window, for up to `bound` seconds."""
        reply = http("POST", self.stack.url("API_PORT", "/api/schedules/repair-failed-windows-daily/run"),
                     token=API_TOKEN)
        assert reply.status in (200, 202), reply.text
        deadline = time.monotonic() + bound
        while self.failed_windows() and time.monotonic() < deadline:
            time.sleep(1)
        if self.failed_windows():
            self.problems.append(f"failed windows left {bound:.0f} s after the repair job")

    def repair_rerun_and_judge(self, repair_bound: float, failed: int) -> None:
        """Repair the `failed` windows the ledger holds, run again (the repaired candles' indicators and
        signals come with the next run, as on the hourly schedule) and judge; the first run's time stays."""
        if failed:
            self.repair(repair_bound)
        seconds = self.row.seconds
        rerun, _ = self.submit()
        self.expect_success(self.wait_terminal(rerun, RUN_BOUND_S, time.monotonic()))
        self.row.seconds = seconds
        self.judge()

    def wait_terminal(self, run_id: str, bound: float, started: float) -> dict | None:
        """Poll until the run is finished or `bound` seconds after `started` passed; records the seconds taken."""
        body = None
        while time.monotonic() - started < bound:
            body = self.status(run_id)
            if body is not None and body["status"] in TERMINAL_STATES:
                self.row.seconds = time.monotonic() - started
                return body
            time.sleep(1)
        shown = body and {"status": body["status"], "stage results": len(body["result"]), "error": body["error"]}
        self.problems.append(f"run {run_id} not terminal {bound:.0f} s after the fault: {shown}")
        return body

    def expect_success(self, body: dict | None) -> None:
        # A run still unfinished is already reported by wait_terminal.
        if body is not None and body["status"] in TERMINAL_STATES and body["status"] != "SUCCESS":
            self.problems.append(f"run {body['task_id']} ended {body['status']}: {body.get('error')}")

    def judge(self) -> None:
        """Measure the row; the scenario passes when every candle and signal is stored exactly once as expected
        and no run is left unfinished. Raises naming every difference."""
        stored = stored_figures(self.engine, self.symbols, self.timeframe)
        open_runs = non_terminal_runs(self.engine)
        self.row.measure(self.expected, stored, len(open_runs))
        missing = self.expected.candles.keys() - stored.candles.keys()
        extra = stored.candles.keys() - self.expected.candles.keys()
        changed = [key for key in self.expected.candles.keys() & stored.candles.keys()
                   if self.expected.candles[key] != stored.candles[key]]
        for what, keys in (("candles missing", missing), ("candles not served", extra),
                           ("candles differing", changed)):
            if keys:
                self.problems.append(f"{len(keys)} {what}, e.g. {sorted(keys)[:3]}")
        if self.expected.signals != stored.signals:
            self.problems.append(f"signals: {len(self.expected.signals - stored.signals)} missing, "
                                 f"{len(stored.signals - self.expected.signals)} unexpected, e.g. "
                                 f"{sorted(self.expected.signals ^ stored.signals)[:3]}")
        if stored.candle_duplicates or stored.signal_duplicates:
            self.problems.append(f"duplicates: {stored.candle_duplicates} candles, {stored.signal_duplicates} signals")
        if open_runs:
            self.problems.append(f"runs left non-terminal: {open_runs}")
        self.row.passed = not self.problems
        if self.problems:
            kept = self.keep_logs()
            raise AssertionError("\n".join([*self.problems, f"the stack's logs: {kept}", "worker errors:",
                                            *self.worker_errors()]))

    def keep_logs(self) -> Path:
        """Every service's log, timestamped, in one file: a failing run's cause must outlive the stack."""
        kept = self.log_dir / "compose.log"
        kept.write_text(self.stack.compose("logs", "--no-color", "--timestamps", check=False).stdout)
        # Beside it, what each run recorded per instrument: which stage said what, for the data it lacks.
        with self.engine.connect() as conn:
            runs = [dict(row) for row in conn.execute(text(
                "SELECT id, kind, state, created_at, finished_at, stages, errors, batches FROM pipeline_runs "
                "ORDER BY created_at")).mappings()]
        (self.log_dir / "runs.json").write_text(json.dumps(runs, indent=1, default=str))
        return kept

    def worker_errors(self, last: int = 20) -> list[str]:
        """The workers' last error lines: where a failing scenario's cause is written."""
        logs = self.stack.compose("logs", "--no-color", "worker-ingest", "worker-indicators", "worker-signals",
                                  check=False).stdout
        return [line[:400] for line in logs.splitlines() if "ERROR" in line or "Error:" in line][-last:]
