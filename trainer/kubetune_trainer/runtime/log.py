"""Plain, timestamped log lines (stdout is what `kubectl logs` shows)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

TERMINATION_LOG = Path("/dev/termination-log")
"""Kubernetes' default terminationMessagePath: what a container writes there becomes its
termination message in the pod's status, which the operator puts on the FineTuneJob."""


def log(message: str) -> None:
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank not in (None, "0") else ""
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} kubetune {prefix}{message}\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    """Say why the process stops: in the log, and as the container's termination message."""
    log(message)
    try:
        with TERMINATION_LOG.open("a") as out:
            out.write(f"kubetune {message}\n")
    except OSError:
        pass  # not in a container (kubetune run, tests): the log says it
