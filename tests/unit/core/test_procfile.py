"""The Procfile runs the image's own start scripts, one command per process, as compose does."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import yaml

from services.cli.procfile import ProcessSpec, parse_procfile

ROOT = Path(__file__).resolve().parents[3]
ENTRIES = {spec.name: spec for spec in parse_procfile((ROOT / "Procfile").read_text())}


def _program(command: str) -> list[str]:
    return shlex.split(command)


def test_every_entry_runs_an_executable_start_script_of_the_image():
    assert ENTRIES, "the Procfile has no entries"
    for name, spec in ENTRIES.items():
        script = _program(spec.command)[0]
        assert script.startswith("compose/app/start-"), f"{name} runs {script}, not a start script"
        assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"


def test_each_entry_starts_the_same_script_and_queue_as_its_compose_service():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, spec in ENTRIES.items():
        local = _program(spec.command)
        container = services[name]["command"].split()
        assert Path(local[0]).name == container[0], name
        if container[0] == "start-worker":  # the queue is the worker's identity; concurrency may differ
            assert local[1] == container[1], name


def test_every_start_script_is_valid_posix_shell():
    for script in sorted((ROOT / "compose/app").glob("start-*")):
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


def test_an_entry_runs_under_sh_with_variables_from_its_own_environment():
    spec = ProcessSpec("echo", "printf '%s' \"port=${API_PORT}\"")
    result = subprocess.run(spec.argv(), env={"API_PORT": "8123", "PATH": os.defpath}, capture_output=True, text=True)
    assert result.stdout == "port=8123"


def test_a_plain_command_replaces_its_shell_so_the_started_pid_is_the_program():
    process = subprocess.Popen(ProcessSpec("sleeper", "sleep 5").argv(), env={"PATH": os.defpath})
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[0] != b"sleep":
            assert time.monotonic() < deadline, "the shell never exec'd the command"
            time.sleep(0.01)
    finally:
        process.kill()
        process.wait()


def test_a_line_with_shell_operators_runs_as_written():
    assert ProcessSpec("two", "echo a; echo b").line == "echo a; echo b"
    assert ProcessSpec("assign", "FOO=1 run").line == "FOO=1 run"
    assert ProcessSpec("plain", "compose/app/start-worker ingest 2").line == "exec compose/app/start-worker ingest 2"


def test_comments_and_blank_lines_are_not_entries():
    specs = parse_procfile("# api: not me\n\napi: compose/app/start-api\nbeat:   compose/app/start-beat\n")
    assert specs == [ProcessSpec("api", "compose/app/start-api"), ProcessSpec("beat", "compose/app/start-beat")]
