"""Processes of the local control plane that fault tests stop and start again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.kube import eventually


class Component:
    """One process of the local control plane (started by kwokctl, or its S3 server): stopped,
    and started again with the same command line, environment, log and PID file — what a
    kubelet does for a static pod."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self.name = pid_file.stem  # kube-apiserver, weed, …
        # kwokctl's files hold the PID; ours (hack/cluster/pids.py) the PID and its start time
        text = self.pid_file.read_text().split()
        self.with_start_time = len(text) > 1
        pid = int(text[0])
        proc = Path(f"/proc/{pid}")
        self.pid = pid
        self.argv = (proc / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        self.cwd = os.readlink(proc / "cwd")
        self.log = os.readlink(proc / "fd" / "1")
        pairs = (proc / "environ").read_bytes().rstrip(b"\0").split(b"\0")
        self.env = dict(p.split(b"=", 1) for p in pairs if b"=" in p)

    @classmethod
    def of_control_plane(cls, kubeconfig: str, name: str) -> Component:
        """kube-apiserver, kube-controller-manager, … of the cluster of `kubeconfig`."""
        return cls(Path(kubeconfig).parent / "pids" / f"{name}.pid")

    def alive(self) -> bool:
        """Running (an exited process that nobody reaped yet is a zombie: not running)."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except FileNotFoundError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def stop(self, kill: bool = False) -> None:
        """SIGTERM; SIGKILL if it still drains its connections after 10 s. `kill`: SIGKILL at
        once, a crash that cuts every connection mid-request."""
        if not kill:
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.2)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        eventually(lambda: not self.alive(), timeout=30, what="the process to stop")

    def start(self) -> None:
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = proc.pid
        record = str(proc.pid)
        if self.with_start_time:  # field 22 of /proc/<pid>/stat, as pids.record writes it
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
            record += " " + stat.rsplit(")", 1)[1].split()[19]
        self.pid_file.write_text(record)
