"""Plain, timestamped log lines (stdout is what `kubectl logs` shows)."""

from __future__ import annotations

import os
import sys
import time


def log(message: str) -> None:
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank not in (None, "0") else ""
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} kubetune {prefix}{message}\n")
    sys.stdout.flush()
