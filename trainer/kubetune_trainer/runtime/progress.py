"""Training progress, written by rank 0 to the job folder for whoever watches.

`progress.json` is replaced atomically, so a reader never sees half a file. `kubetune run`'s
progress bar reads it; in a pod, `reporter.StatusSink` also patches the same progress into the
FineTuneJob status. The network preflight reports through the same sinks (`network`). Each
report is stamped `updatedAt` (`stamped`) before it goes to either.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol


class ProgressSink(Protocol):
    def report(self, progress: dict[str, Any], force: bool = False) -> Any:
        """Record progress; `force` bypasses any rate limit (the last report of a run)."""


def stamped(progress: dict[str, Any]) -> dict[str, Any]:
    """The progress with `updatedAt` (RFC 3339, UTC) set to now, unless it has one."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {**progress, "updatedAt": progress.get("updatedAt") or now}


class FileSink:
    """progress.json: every report merged over the earlier ones of this process, as a merge
    patch merges into the status (so the preflight's `network` stays beside the progress)."""

    def __init__(self, job_dir: str | os.PathLike[str]) -> None:
        self.path = Path(job_dir) / "progress.json"
        self.reported: dict[str, Any] = {}

    def report(self, progress: dict[str, Any], force: bool = False) -> None:
        self.reported = {**self.reported, **stamped(progress)}
        tmp = self.path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.reported))
        os.replace(tmp, self.path)


def read_progress(job_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((Path(job_dir) / "progress.json").read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None
