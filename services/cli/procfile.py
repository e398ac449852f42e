"""The Procfile as honcho reads and runs it, for `candleflow run-local` and the test harnesses."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from honcho.environ import parse_procfile as _honcho_parse
from honcho.manager import Manager
from honcho.printer import Printer

__all__ = ["ProcessSpec", "parse_procfile", "run_procfile"]


# A line that is one plain command, with no shell operators or leading VAR=value assignments.
_PLAIN = re.compile(r"(?![A-Za-z_][A-Za-z0-9_]*=)[^;&|<>()`\n]+")


@dataclass(frozen=True)
class ProcessSpec:
    """One Procfile line: a name and its shell command."""

    name: str
    command: str

    @property
    def line(self) -> str:
        """The /bin/sh line that runs it: a plain command replaces the shell (`exec`), so the process
        honcho or a harness started is the program itself and waiting for it waits for the program.
        (dash forks for `sh -c cmd`: SIGTERM would end the shell at once and the program later.)
        """
        return f"exec {self.command}" if _PLAIN.fullmatch(self.command) else self.command

    def argv(self, env: Mapping[str, str] | None = None) -> list[str]:
        """The line as honcho starts it; `env` is unused: the shell takes ${VARS} from the environment
        the process is started with."""
        return ["/bin/sh", "-c", self.line]


def parse_procfile(text: str) -> list[ProcessSpec]:
    """Entries in file order, parsed by honcho (lines that are not `name: command` are skipped)."""
    return [ProcessSpec(name, command) for name, command in _honcho_parse(text).processes.items()]


def run_procfile(specs: list[ProcessSpec], env: Mapping[str, str], cwd: Path) -> int:
    """Run the entries under honcho until one exits or Ctrl-C, then stop them all; the first exit code.

    honcho prefixes each line with the time and the entry's name, sends SIGTERM to every
    process group once one process ends (SIGKILL 5 s later) and returns that process's
    code, or 130/143 when it was itself interrupted or terminated.
    """
    manager = Manager(Printer(sys.stdout))
    for spec in specs:
        manager.add_process(spec.name, spec.line, env=dict(env), cwd=str(cwd))
    manager.loop()
    return manager.returncode
