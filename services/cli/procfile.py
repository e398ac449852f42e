"""Running a Procfile: each line a process, output prefixed with its name, all stopped together."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessSpec", "parse_procfile", "start_process", "run_procfile"]

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class ProcessSpec:
    """One Procfile line: a name and the command, with ${VARS} still unexpanded."""

    name: str
    command: str

    def argv(self, env: Mapping[str, str]) -> list[str]:
        """The command split into arguments, with ${VAR} taken from `env` (missing → error)."""
        def expand(match: re.Match) -> str:
            name = match.group(1) or match.group(2)
            if name not in env:
                raise KeyError(f"Procfile entry {self.name!r} needs ${name}, which is not set")
            return env[name]
        return shlex.split(_VAR.sub(expand, self.command))


def parse_procfile(text: str) -> list[ProcessSpec]:
    """Entries in file order; blank lines and # comments are skipped, anything else must parse."""
    specs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match:
            raise ValueError(f"Procfile line {number}: expected 'name: command', got {line!r}")
        specs.append(ProcessSpec(match.group(1), match.group(2)))
    return specs


def start_process(spec: ProcessSpec, env: Mapping[str, str], output=None) -> subprocess.Popen:
    """Start one entry in its own process group (so stopping it stops its children too)."""
    return subprocess.Popen(spec.argv(env), env=dict(env), stdout=output or subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, text=True)


def _relay(name: str, process: subprocess.Popen, width: int) -> None:
    for line in process.stdout:
        sys.stdout.write(f"{name:<{width}} | {line}")
        sys.stdout.flush()


def run_procfile(path: Path, env: Mapping[str, str], only: list[str] | None = None) -> int:
    """Run every entry until one exits or Ctrl-C; then stop them all. Returns the first exit code."""
    specs = [s for s in parse_procfile(path.read_text()) if not only or s.name in only]
    width = max(len(s.name) for s in specs)
    processes = {spec.name: start_process(spec, env) for spec in specs}
    for name, process in processes.items():
        threading.Thread(target=_relay, args=(name, process, width), daemon=True).start()
    code = 0
    try:
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.2)
        name, code = next((n, p.returncode) for n, p in processes.items() if p.returncode is not None)
        print(f"{name} exited with {code}; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    return code
