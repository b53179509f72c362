"""s3:// downloads (sources, in `prepare`) and uploads (`output.uri`, after the export), through
boto3's transfer manager (s3transfer: parallel ranged GETs, multipart PUTs, retries).

Downloads land in `<cache>/s3/<location digest>/`, one replica at a time under a lease. Each
object is fetched to a `.kubetune-part-*` file (s3transfer pins the ranged GETs of one object to
one ETag), checked against the listing: its ETag must not have changed since, as many bytes as
its size must have arrived, and they must give its checksum or ETag (object_digests.py); only
then is it renamed into place and recorded in `.kubetune-s3.json`. A download with the wrong
bytes is fetched once more, then refused (BadDigest); transient errors are retried with backoff
(object_checks.Backoff). So a rerun downloads only what changed, and a
partial, replaced or corrupted object is never used.

Uploads (object_upload.py) send every file but `manifest.json` first, that one last.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune_api.s3_spec import Located, S3Location, ca_bundle_path
from kubetune_api.status import Upload
from kubetune_trainer.runtime.lease import holder_id, lease
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.object_checks import (
    Backoff,
    ObjectStoreError,
    Received,
    ShortDownload,
    describe,
    error_code,
    head_with_checksums,
    part_size,
    transient,
    with_backoff,
)
from kubetune_trainer.storage.object_digests import verdict

RECORD = ".kubetune-s3.json"
MANIFEST = "manifest.json"
CHUNK = 8 * 1024 * 1024  # upload parts (and the size above which an upload is multipart)
# Downloads read ranges of 32 MiB, each in 1 MiB pieces, at most 32 pieces queued for the writer:
# against 8 MiB ranges in s3transfer's 256 KiB pieces, 0.57–0.59× the native client's rate
# instead of 0.47–0.49× (docs/benchmarks.md), with a peak RSS of 179–194 MiB (≤ 256).
DOWNLOAD_RANGE = 32 * 1024 * 1024
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
    PROGRESS_EVERY_S seconds, how much of the total is done and at what rate. s3transfer
    reports the bytes from its worker threads (negative ones when a retry rewinds)."""

    def __init__(
        self, verb: str, total: int, uri: str, report: Callable[[Upload], None] | None = None
    ) -> None:
        self.verb, self.total, self.uri = verb, max(total, 1), uri
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
            percent = 100 * self.done // self.total
            now = time.monotonic()
            if percent < self.next_quarter and now - self.logged_at < PROGRESS_EVERY_S:
                return
            while self.next_quarter <= percent:
                self.next_quarter += 25
            self.logged_at = now
            rate = self.done / max(now - self.started, 1e-9)
            log(
                f"{self.uri}: {self.verb} {percent}% ({self.done} of {self.total} bytes, "
                f"{rate / 2**20:.1f} MiB/s)"
            )
            # taken under the lock with the log line's moment: the same bytes and rate
            snapshot = self.state(min(percent, 99), now=now)
        if self.report is not None:
            self.report(snapshot)

    def state(self, percent: int, done: bool = False, now: float | None = None) -> Upload:
        elapsed = (time.monotonic() if now is None else now) - self.started
        rate = self.done / max(elapsed, 1e-9)
        return Upload(
            uri=self.uri,
            bytes=self.done,
            totalBytes=self.total,
            percent=percent,
            bytesPerSecond=round(rate, 1),
            done=done,
        )


def transfer_config(part: int = CHUNK) -> Any:
    """s3transfer's settings: `part` bytes per upload part or download range."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=CHUNK,
        multipart_chunksize=part,
        max_concurrency=CONCURRENCY,
        use_threads=True,
        io_chunksize=1 << 20,
        max_io_queue=32,
    )


def download(where: Located, cache: Path) -> tuple[Path, str]:
    """Fetch the location into the cache; return its local path (a file for one object, else
    the folder) and a revision (a digest of the keys and ETags)."""
    digest = hashlib.sha256(f"{where.connection.endpoint}|{where.uri}".encode()).hexdigest()[:16]
    folder = cache / "s3" / digest
    with lease(
        cache / "locks" / f"s3-{digest}.lock",
        on_wait=lambda: log(f"waiting: another replica is downloading {where.uri}"),
    ):
        s3 = client(where)
        listed = list_objects(s3, where)
        loc = S3Location.parse(where.uri)
        single = len(listed) == 1 and listed[0].key == loc.key
        base = loc.key.rsplit("/", 1)[0] + "/" if single and "/" in loc.key else ""
        if not single:
            base = loc.key if not loc.key or loc.key.endswith("/") else loc.key + "/"
        fetch_objects(s3, where, listed, folder, base)
    revision = hashlib.sha256(
        json.dumps(sorted((o.key, o.etag) for o in listed)).encode()
    ).hexdigest()
    path = folder / listed[0].key.removeprefix(base) if single else folder
    return path, revision


def unchanged(s3: Any, where: Located, obj: Listed, tmp: Path) -> None:
    """Raise PreconditionFailed (and drop the file) when the object's ETag is no longer the
    listed one: replaced since the listing, which version did we get?"""
    bucket = S3Location.parse(where.uri).bucket
    now = with_backoff(where, obj.key, lambda: s3.head_object(Bucket=bucket, Key=obj.key))["ETag"]
    if now != obj.etag:
        tmp.unlink(missing_ok=True)
        raise ObjectStoreError(
            f"{where.field}: s3://{bucket}/{obj.key}: PreconditionFailed: the object changed "
            f"during the download (ETag {now}, listed {obj.etag}); not used, run it again"
        )


def wrong_bytes(s3: Any, where: Located, obj: Listed, path: Path, received: Received) -> str:
    """What is wrong with a downloaded file, or "" when its bytes are the object's: as many as
    its size arrived and are on disk, and they give its checksum or ETag (object_digests)."""
    got, size = received.bytes.get(obj.key, 0), path.stat().st_size
    if got != obj.size or size != obj.size:
        return f"{got} bytes arrived and {size} are on disk of the object's {obj.size}"
    bucket = S3Location.parse(where.uri).bucket
    part = part_size(s3, where, bucket, obj.key) if "-" in obj.etag else None
    found = verdict(path, obj.etag, lambda: head_with_checksums(s3, where, bucket, obj.key), part)
    if found.how.startswith("size only"):
        log(f"{where.uri}: {obj.key}: checked by {found.how}")
    return f"the {size} bytes: {found.wrong}" if found.wrong else ""


def fetch_objects(s3: Any, where: Located, listed: list[Listed], folder: Path, base: str) -> None:
    from boto3.s3.transfer import create_transfer_manager

    folder.mkdir(parents=True, exist_ok=True)
    record_file = folder / RECORD
    record: dict[str, dict[str, Any]] = (
        json.loads(record_file.read_text()) if record_file.exists() else {}
    )
    for stale in folder.rglob("*.kubetune-part-*"):
        stale.unlink()  # a crashed download: never used, fetched again
    todo = []
    for obj in listed:
        rel = obj.key.removeprefix(base)
        target = folder / rel
        known = record.get(rel)
        if known == {"etag": obj.etag, "size": obj.size} and target.exists():
            continue
        todo.append((obj, rel, target))
    if not todo:
        log(f"{where.uri}: {len(listed)} objects cached by ETag, nothing to download")
        return
    total = sum(o.size for o, _, _ in todo)
    log(f"{where.uri}: downloading {len(todo)} of {len(listed)} objects ({total} bytes)")
    bucket = S3Location.parse(where.uri).bucket
    part = f".kubetune-part-{holder_id()}"
    progress = TransferProgress("downloaded", total, where.uri)
    subscribers = [progress.subscriber()]
    backoff = Backoff(where)
    pending = todo
    mismatches: set[str] = set()
    while pending:
        failed: list[tuple[Listed, BaseException]] = []
        received = Received()
        with create_transfer_manager(s3, transfer_config(DOWNLOAD_RANGE)) as manager:
            futures = []
            for obj, _, target in pending:
                target.parent.mkdir(parents=True, exist_ok=True)
                watch = [*subscribers, received.subscriber()]
                futures.append(
                    manager.download(bucket, obj.key, str(target) + part, subscribers=watch)
                )
            for (obj, _, target), future in zip(pending, futures, strict=True):
                try:
                    future.result()
                except Exception as error:
                    failed.append((obj, error))
                    continue
                wrong = wrong_bytes(s3, where, obj, Path(str(target) + part), received)
                if wrong:  # a replaced object is refused at once, whatever its bytes
                    unchanged(s3, where, obj, Path(str(target) + part))
                if wrong and obj.key in mismatches:  # twice: not a passing glitch
                    Path(str(target) + part).unlink(missing_ok=True)
                    raise ObjectStoreError(
                        f"{where.field}: s3://{bucket}/{obj.key}: BadDigest: {wrong}, twice; "
                        "not used"
                    )
                if wrong:
                    mismatches.add(obj.key)
                    failed.append((obj, ShortDownload(wrong)))
        for obj, problem in failed:
            if not transient(problem):
                raise describe(problem, where, obj.key) from None
        again = {obj.key for obj, _ in failed}
        pending = [t for t in pending if t[0].key in again]
        if failed:  # the server unreachable, restarting, overloaded: those objects again
            progress.rewind(sum(o.size for o, _, _ in pending))
            backoff.wait(failed[0][1], failed[0][0].key, f"{len(pending)} object(s)")
    for obj, rel, target in todo:
        tmp = Path(str(target) + part)
        unchanged(s3, where, obj, tmp)
        os.replace(tmp, target)
        record[rel] = {"etag": obj.etag, "size": obj.size}
        tmp_record = record_file.with_name(RECORD + part)
        tmp_record.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp_record, record_file)


def files_under(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".tmp-" not in path.name:
            yield path
