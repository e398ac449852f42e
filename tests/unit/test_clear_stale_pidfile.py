"""compose/clear-stale-pidfile: a pid file naming another process is removed, one naming the daemon is kept."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "compose" / "clear-stale-pidfile"


@pytest.fixture
def live_process():
    """A live process that is not a docker daemon."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def _clear(pidfile: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), str(pidfile), name], capture_output=True, text=True, check=True)


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def test_a_pid_file_naming_an_unrelated_live_process_is_removed(tmp_path, live_process):
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(str(live_process.pid))
    result = _clear(pidfile, "dockerd")
    assert not pidfile.exists()
    assert f"pid {live_process.pid} is not dockerd" in result.stderr


def test_a_pid_file_naming_the_daemon_is_kept(tmp_path, live_process):
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(f"{live_process.pid}\n")
    _clear(pidfile, _comm(live_process.pid))
    assert pidfile.read_text() == f"{live_process.pid}\n"


def test_a_pid_file_naming_no_process_is_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(finished.stdout.strip())
    _clear(pidfile, "dockerd")
    assert not pidfile.exists()


def test_no_pid_file_is_fine(tmp_path):
    assert _clear(tmp_path / "absent.pid", "dockerd").returncode == 0
