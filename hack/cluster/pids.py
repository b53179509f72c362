"""PID files that survive their process safely: each records the PID and the process' start
time (field 22 of /proc/<pid>/stat), so a PID the kernel has since given to another process
(after a reboot, or a long run of tests) never passes for the one that wrote the file — and is
never signalled by `down`. A file with a bare PID (kwokctl's own, or one of ours from before
start times were recorded) names its process only if that PID's binary is `command`."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on


def record(pid_file: Path, pid: int) -> None:
    fields = _stat(pid)
    started = fields[19] if fields else ""  # field 22, starttime
    pid_file.write_text(f"{pid} {started}".strip())


def alive(pid_file: Path, command: str) -> int | None:
    """The PID in the file if that very process runs (an exited one that nobody reaped, a
    zombie where PID 1 does not reap, counts as gone; so does a reused PID). `command`: the
    start of its binary's name, for a file without a start time."""
    try:
        pid_text, _, started = pid_file.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return None
    if started:
        return pid if fields[19] == started else None
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return pid if Path(argv0.decode(errors="replace")).name.startswith(command) else None


def start_detached(
    cmd: list[str], log_file: Path, pid_file: Path, append: bool = False
) -> subprocess.Popen[bytes]:
    """Start a server of the control plane in a session of its own, so it outlives the
    command that started it (as kwokctl's processes do), its output in `log_file` (added to
    it with `append`); record it in `pid_file`."""
    with log_file.open("ab" if append else "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    record(pid_file, proc.pid)
    return proc
