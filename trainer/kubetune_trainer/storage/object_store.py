"""s3:// connections, listings and transfer progress, shared by downloads (object_fetch.py, in
`prepare` and checkpoint restores) and uploads (object_upload.py, after the export: boto3's
transfer manager, every file but `manifest.json` first, that one last).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune_api.s3_spec import Located, S3Location, ca_bundle_path
from kubetune_api.status import Upload
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.object_checks import (
    ObjectStoreError,
    describe,
    error_code,
)

MANIFEST = "manifest.json"
CHUNK = 8 * 1024 * 1024  # upload parts (and the size above which an upload is multipart)
CONCURRENCY = 8


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str


def client(where: Located) -> Any:
    """A boto3 S3 client for the location's connection. Credentials from its Secret's variables
    when the pod has them, else the SDK's default chain (AWS_*, IRSA, Pod Identity, …)."""
    import boto3
    from botocore.config import Config

    conn = where.connection
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    env = where.env
    if env is not None and os.environ.get(env.access_key_id):
        access_key = os.environ[env.access_key_id]
        secret_key = os.environ.get(env.secret_access_key, "")
        session_token = os.environ.get(env.session_token) or None
    config = Config(
        region_name=conn.region,
        s3={"addressing_style": "path" if conn.pathStyle else "auto"},
        retries={"max_attempts": 4, "mode": "standard"},  # then Backoff, for transfers
        max_pool_connections=2 * CONCURRENCY,
        connect_timeout=10,
        read_timeout=120,
    )
    verify: str | None = ca_bundle_path(conn.caBundle) if conn.caBundle else None
    return boto3.session.Session().client(
        "s3",
        endpoint_url=conn.endpoint,
        config=config,
        verify=verify,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
    )


def list_objects(s3: Any, where: Located) -> list[Listed]:
    """The object named by the URI, else every object under it as a prefix."""
    loc = S3Location.parse(where.uri)
    prefix = loc.key if not loc.key or loc.key.endswith("/") else loc.key + "/"
    found: list[Listed] = []
    try:
        if loc.key and not loc.key.endswith("/"):
            try:
                head = s3.head_object(Bucket=loc.bucket, Key=loc.key)
                return [Listed(loc.key, head["ContentLength"], head["ETag"])]
            except Exception as err:
                if error_code(err) not in ("404", "NoSuchKey", "NotFound"):
                    raise
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):  # folder markers
                    found.append(Listed(obj["Key"], obj["Size"], obj["ETag"]))
    except Exception as err:
        raise describe(err, where, loc.key) from None
    if not found:
        raise ObjectStoreError(
            f"{where.field}: s3://{loc.bucket}/{loc.key}: NoSuchKey: no object with this key "
            "and none under it as a prefix"
        )
    return found


PROGRESS_EVERY_S = 10.0


class TransferProgress:
    """A transfer's progress in the log: at every quarter of its bytes and at least every
    PROGRESS_EVERY_S seconds, how much of the total is done and at what rate. The bytes come
    from worker threads: s3transfer's for uploads (negative ones when a retry rewinds), the
    download's own (object_fetch.py)."""

    def __init__(
        self, verb: str, total: int, uri: str, report: Callable[[Upload], None] | None = None
    ) -> None:
        self.verb, self.total, self.uri = verb, total, uri
        self.report = report
        self.done = 0
        self.started = self.logged_at = time.monotonic()
        self.next_quarter = 25
        self.lock = threading.Lock()

    def subscriber(self) -> Any:
        """What s3transfer calls with the bytes of every chunk (boto3's own adapter)."""
        from boto3.s3.transfer import ProgressCallbackInvoker

        return ProgressCallbackInvoker(self.add)

    def rewind(self, n: int) -> None:
        """Files sent again count from zero: take back up to `n` bytes already counted."""
        with self.lock:
            self.done = max(0, self.done - n)

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            sent = self.sent()
            percent = 100 * sent // max(self.total, 1)
            now = time.monotonic()
            if percent < self.next_quarter and now - self.logged_at < PROGRESS_EVERY_S:
                return
            while self.next_quarter <= percent:
                self.next_quarter += 25
            self.logged_at = now
            rate = sent / max(now - self.started, 1e-9)
            log(
                f"{self.uri}: {self.verb} {percent}% ({sent} of {self.total} bytes, "
                f"{rate / 2**20:.1f} MiB/s)"
            )
            # taken under the lock with the log line's moment: the same bytes and rate
            snapshot = self.state(min(percent, 99), now=now)
        if self.report is not None:
            self.report(snapshot)

    def sent(self) -> int:
        """The bytes counted, at most the total: a request that botocore sends again after a
        cut can be counted twice (seen once in CI: 107% of a small upload)."""
        return min(self.done, self.total)

    def state(self, percent: int, done: bool = False, now: float | None = None) -> Upload:
        """The progress for the status; `done`: every byte is on the server."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        sent = self.total if done else self.sent()
        rate = sent / max(elapsed, 1e-9)
        return Upload(
            uri=self.uri,
            bytes=sent,
            totalBytes=self.total,
            percent=percent,
            bytesPerSecond=round(rate, 1),
            done=done,
        )


def transfer_config() -> Any:
    """s3transfer's settings for uploads: CHUNK bytes per part, CONCURRENCY parts at a time."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=CHUNK,
        multipart_chunksize=CHUNK,
        max_concurrency=CONCURRENCY,
        use_threads=True,
    )


def files_under(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".tmp-" not in path.name:
            yield path
