"""A lock on a shared volume that works across nodes: an exclusively created file, kept alive
by a heartbeat, broken when its holder stops beating (a crashed holder never blocks others).

flock() is unreliable across nodes on NFS-like RWX volumes; O_CREAT|O_EXCL is not.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def try_acquire(path: Path, stale_after: float = STALE_SECONDS) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return False  # released meanwhile; the next poll takes it
        if age > stale_after:
            # The holder stopped beating. Move the lock aside atomically; only one breaker wins.
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, path.with_name(f"{path.name}.stale-{holder_id()}"))
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"holder": holder_id(), "since": time.time()}, f)
    return True


@contextlib.contextmanager
def lease(
    path: Path,
    *,
    wait_message: str = "",
    poll: float = 1.0,
    on_wait: Callable[[], object] | None = None,
) -> Iterator[bool]:
    """Hold `path` while the block runs; yields True. Waits (calling on_wait) while another
    holder is alive."""
    while not try_acquire(path):
        if on_wait is not None:
            on_wait()
        time.sleep(poll)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(FileNotFoundError):
                os.utime(path)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
