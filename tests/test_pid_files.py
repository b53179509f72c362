"""hack/cluster/pids.py: a PID file of a process that is gone is never taken for a live
one, even once the kernel gave its PID to another process (seen here: Kueue's file named the
new cluster's kube-apiserver, so Kueue was never started, and `down` would have signalled the
API server)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tests.support.factories import REPO

spec = importlib.util.spec_from_file_location("pids", REPO / "hack" / "cluster" / "pids.py")
assert spec is not None and spec.loader is not None
pids = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pids)


def test_a_running_process_is_alive_and_an_exited_one_is_not(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid_file = tmp_path / "p.pid"
    try:
        pids.record(pid_file, proc.pid)
        assert pids.alive(pid_file, "python") == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert pids.alive(pid_file, "python") is None


def test_a_reused_pid_is_not_the_process_that_wrote_the_file(tmp_path: Path) -> None:
    """This very test process stands in for the process that got the PID later: the file
    records another start time."""
    pid_file = tmp_path / "p.pid"
    pids.record(pid_file, os.getpid())
    pid, started = pid_file.read_text().split()
    pid_file.write_text(f"{pid} {int(started) - 1}")
    assert pids.alive(pid_file, "python") is None


def test_a_bare_pid_names_its_process_only_if_it_runs_the_command(tmp_path: Path) -> None:
    """kwokctl's files hold a bare PID, and so do ours from before start times were recorded
    (a cache from an older checkout): trusted only when the PID runs the expected binary."""
    pid_file = tmp_path / "kueue.pid"
    pid_file.write_text(str(os.getpid()))  # this test's Python: not Kueue
    python = Path(sys.executable).name
    assert pids.alive(pid_file, "kueue") is None
    assert pids.alive(pid_file, python) == os.getpid()
    pid_file.write_text("not a pid")
    assert pids.alive(pid_file, python) is None
