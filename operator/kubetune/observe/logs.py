"""Log lines of a job, each prefixed by the rank of the node (pod) that wrote it:
`[rank 1] …` for the training container (`pytorch`), `[rank 1 prepare] …` for the init
container. A `kubetune run` folder keeps them as files (`logs/prepare.log`, run once for all
nodes, and `logs/node-<rank>.log`); on a cluster they come from the pods (observe.cluster).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CONTAINERS = ("prepare", "pytorch")
FOLLOW_POLL_SECONDS = 0.5


def split_lines(text: str) -> tuple[list[str], str]:
    """The whole lines of `text` and the rest still being written. A carriage return ends a line
    too: a progress bar redraws itself with them, and each redraw gets its own prefix instead of
    writing over it. (One at the very end waits for the next chunk: it may start a CR LF.)"""
    parts = re.split(r"\r\n|\r(?!$)|\n", text)
    return parts[:-1], parts[-1]


def prefix(rank: int, container: str) -> str:
    return f"[rank {rank}]" if container == "pytorch" else f"[rank {rank} {container}]"


@dataclass(frozen=True)
class LogFile:
    rank: int
    container: str
    path: Path


def folder_logs(job_dir: Path, rank: int | None, container: str | None) -> list[LogFile]:
    """The log files of a run folder's job, prepare's first, then each node's by rank."""
    logs = job_dir / "logs"
    found = []
    if container in (None, "prepare") and rank in (None, 0) and (logs / "prepare.log").exists():
        found.append(LogFile(0, "prepare", logs / "prepare.log"))
    if container in (None, "pytorch"):
        nodes = sorted(logs.glob("node-*.log"), key=lambda p: int(p.stem.split("-")[1]))
        for path in nodes:
            node = int(path.stem.split("-")[1])
            if rank in (None, node):
                found.append(LogFile(node, "pytorch", path))
    return found


def folder_lines(
    job_dir: Path,
    rank: int | None,
    container: str | None,
    follow: bool,
    finished: Callable[[], bool],
) -> Iterator[str]:
    """Every line of the chosen logs, prefixed; with `follow`, new lines as they are written
    (and logs that appear, a node's once it starts) until `finished()` and nothing is left."""
    offsets: dict[Path, int] = {}
    partial: dict[Path, str] = {}
    while True:
        done = finished()  # asked before reading: lines written before the end are all read
        for log in folder_logs(job_dir, rank, container):
            with log.path.open("r", encoding="utf-8", errors="replace") as stream:
                stream.seek(offsets.get(log.path, 0))
                chunk = stream.read()
                offsets[log.path] = stream.tell()
            lines, rest = split_lines(partial.pop(log.path, "") + chunk)
            if rest:
                partial[log.path] = rest  # a line still being written
            for line in lines:
                yield f"{prefix(log.rank, log.container)} {line}"
        if not follow or done:
            for path, rest in partial.items():
                log = next(x for x in folder_logs(job_dir, rank, container) if x.path == path)
                yield f"{prefix(log.rank, log.container)} {rest.rstrip(chr(13))}"
            return
        time.sleep(FOLLOW_POLL_SECONDS)  # a file has no change notification to wait on here
