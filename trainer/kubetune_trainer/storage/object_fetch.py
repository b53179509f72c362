"""s3:// downloads (sources, in `prepare`; checkpoints, checkpoint_store.py).

They land in `<cache>/s3/<location digest>/`, one replica at a time under a lease. Each
object's HEAD decides how its bytes are checked (object_digests.plan: its checksum, else its
ETag, else its size); then its pieces (whole parts, about 32 MiB of them, when the check is by
parts; else the whole object; else 32 MiB ranges) are streamed by ranged GETs pinned to the
listed ETag (`If-Match`), CONCURRENCY at a time, into a `.kubetune-part-*` file at their
offsets, digested as their bytes arrive. Only when every piece got all its bytes and they give
the object's checksum or ETag is the file renamed into place and recorded in
`.kubetune-s3.json`. A piece failed by a transient error is fetched again with backoff
(object_checks.Backoff); an object whose bytes fall short or are wrong is fetched once more,
then refused (BadDigest); one replaced since the listing is refused (PreconditionFailed). So a
rerun downloads only what changed, and a partial, replaced or corrupted object is never used.

Not s3transfer for downloads: its ranged GETs write through a queue to one writer thread and
cannot digest as they go, so every byte was read again to be checked, and its queueing cost
about 3× the CPU of a plain streamed GET (the measurements: docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune_api.s3_spec import Located, S3Location
from kubetune_trainer.runtime.lease import holder_id, lease
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.object_checks import (
    Backoff,
    ObjectStoreError,
    ShortDownload,
    describe,
    head_with_checksums,
    part_size,
    transient,
    with_backoff,
)
from kubetune_trainer.storage.object_digests import Check, plan
from kubetune_trainer.storage.object_store import (
    CONCURRENCY,
    Listed,
    TransferProgress,
    client,
    list_objects,
)

RECORD = ".kubetune-s3.json"
DOWNLOAD_RANGE = 32 * 1024 * 1024  # the pieces of an object checked by size alone
# Each GET's body is read, written and digested in pieces of this size (the sizes measured
# against each other: docs/benchmarks.md, "Object storage").
READ = 256 * 1024


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


def replaced(where: Located, bucket: str, obj: Listed, now: str) -> ObjectStoreError:
    return ObjectStoreError(
        f"{where.field}: s3://{bucket}/{obj.key}: PreconditionFailed: the object changed "
        f"since the listing (ETag {now}, listed {obj.etag}); not used, run it again"
    )


def unchanged(s3: Any, where: Located, obj: Listed, tmp: Path) -> None:
    """Raise PreconditionFailed (and drop the file) when the object's ETag is no longer the
    listed one: replaced since the listing, which version did we get?"""
    bucket = S3Location.parse(where.uri).bucket
    now = with_backoff(where, obj.key, lambda: s3.head_object(Bucket=bucket, Key=obj.key))["ETag"]
    if now != obj.etag:
        tmp.unlink(missing_ok=True)
        raise replaced(where, bucket, obj, now)


@dataclass(frozen=True)
class Piece:
    """One ranged GET of an object: `length` bytes from `start`, written at that offset."""

    obj: Listed
    start: int
    length: int


def _fetch_piece(
    s3: Any, bucket: str, piece: Piece, fd: int, check: Check, progress: TransferProgress
) -> tuple[list[bytes], int]:
    """Stream the piece into the file at its offset, digesting it as it arrives: its digests
    (one per part when the check is by parts, else one; none when it is by size) and the bytes
    that arrived (fewer than asked when the object is shorter than listed). The bytes counted
    in the progress are taken back when the GET fails (a connection cut, a timeout, an error
    status)."""
    digester = check.digester()
    got = 0
    try:
        if piece.length:
            last = piece.start + piece.length - 1
            body = s3.get_object(
                Bucket=bucket,
                Key=piece.obj.key,
                IfMatch=piece.obj.etag,
                Range=f"bytes={piece.start}-{last}",
            )["Body"]
            with body:
                for chunk in body.iter_chunks(READ):
                    os.pwrite(fd, chunk, piece.start + got)
                    progress.add(len(chunk))
                    got += len(chunk)
                    if digester is not None:
                        digester.update(chunk)
    except BaseException:
        progress.rewind(got)
        raise
    return (digester.finish() if digester is not None else []), got


def _plan(s3: Any, where: Located, bucket: str, obj: Listed) -> Check:
    """The object's check, from its HEAD; PreconditionFailed when its ETag is no longer the
    listed one (replaced since the listing)."""
    found = head_with_checksums(s3, where, bucket, obj.key)
    if found["ETag"] != obj.etag:
        raise replaced(where, bucket, obj, found["ETag"])
    check = plan(obj.etag, found, lambda: part_size(s3, where, bucket, obj.key))
    if check.how.startswith("size only"):
        log(f"{where.uri}: {obj.key}: checked by {check.how}")
    return check


def fetch_objects(s3: Any, where: Located, listed: list[Listed], folder: Path, base: str) -> None:
    """Download the listed objects that the folder's record does not have with their ETag
    (the module's docstring says how), then rename each into place and record it."""
    from concurrent.futures import ThreadPoolExecutor

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
    suffix = f".kubetune-part-{holder_id()}"
    parts = {obj.key: Path(str(target) + suffix) for obj, _, target in todo}
    fds: dict[str, int] = {}
    try:
        for obj, _, target in todo:
            target.parent.mkdir(parents=True, exist_ok=True)
            fds[obj.key] = os.open(parts[obj.key], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            _Fetch(s3, where, pool, fds, parts).run([obj for obj, _, _ in todo], total)
    except BaseException:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    finally:
        for fd in fds.values():
            os.close(fd)
    for obj, rel, target in todo:
        os.replace(parts[obj.key], target)
        record[rel] = {"etag": obj.etag, "size": obj.size}
        tmp_record = record_file.with_name(RECORD + suffix)
        tmp_record.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp_record, record_file)


class _Fetch:
    """One download's rounds: every piece not yet fetched, CONCURRENCY at a time; then each
    object whose pieces are all in is checked; what failed transiently or came out wrong (once)
    goes again after a backoff."""

    def __init__(
        self, s3: Any, where: Located, pool: Any, fds: dict[str, int], parts: dict[str, Path]
    ) -> None:
        self.s3, self.where, self.pool, self.fds, self.parts = s3, where, pool, fds, parts
        self.bucket = S3Location.parse(where.uri).bucket
        self.digests: dict[tuple[str, int], tuple[list[bytes], int]] = {}
        self.mismatches: set[str] = set()

    def run(self, objects: list[Listed], total: int) -> None:
        progress = TransferProgress("downloaded", total, self.where.uri)
        checks = dict(
            zip(
                (obj.key for obj in objects),
                self.pool.map(lambda obj: _plan(self.s3, self.where, self.bucket, obj), objects),
                strict=True,
            )
        )
        pieces = {
            obj.key: [Piece(obj, a, n) for a, n in checks[obj.key].pieces(obj.size, DOWNLOAD_RANGE)]
            for obj in objects
        }
        backoff = Backoff(self.where)
        pending = [p for obj in objects for p in pieces[obj.key]]
        while pending:
            failed = self.fetch(pending, checks, progress)
            finished = {p.obj.key for p in pending} - {p.obj.key for p, _ in failed}
            for obj in objects:
                wrong = obj.key in finished and self.wrong(obj, checks[obj.key], pieces[obj.key])
                if wrong:
                    progress.rewind(obj.size)
                    failed += [(p, ShortDownload(wrong)) for p in pieces[obj.key]]
            pending = [p for p, _ in failed]
            if failed:  # the server unreachable, restarting, overloaded: those pieces again
                backoff.wait(failed[0][1], failed[0][0].obj.key, f"{len(pending)} range(s)")

    def fetch(
        self, pending: list[Piece], checks: dict[str, Check], progress: TransferProgress
    ) -> list[tuple[Piece, BaseException]]:
        """Fetch the pieces; those that failed transiently, with their errors."""
        futures = [
            self.pool.submit(
                _fetch_piece,
                self.s3,
                self.bucket,
                p,
                self.fds[p.obj.key],
                checks[p.obj.key],
                progress,
            )
            for p in pending
        ]
        failed: list[tuple[Piece, BaseException]] = []
        for piece, future in zip(pending, futures, strict=True):
            try:
                self.digests[(piece.obj.key, piece.start)] = future.result()
            except Exception as error:
                failed.append((piece, error))
        for piece, problem in failed:
            if not transient(problem):
                raise describe(problem, self.where, piece.obj.key) from None
        return failed

    def wrong(self, obj: Listed, check: Check, pieces: list[Piece]) -> str:
        """What is wrong with the object's bytes ("" when nothing); BadDigest the second time,
        PreconditionFailed when it was replaced."""
        got = [self.digests[(obj.key, p.start)] for p in pieces]
        arrived = sum(n for _, n in got)
        if arrived != obj.size:
            wrong = f"{arrived} bytes arrived"
        else:
            wrong = check.wrong(obj.size, [d for digests, _ in got for d in digests])
        if not wrong:
            return ""
        unchanged(self.s3, self.where, obj, self.parts[obj.key])
        if obj.key in self.mismatches:  # twice: not a passing glitch
            raise ObjectStoreError(
                f"{self.where.field}: s3://{self.bucket}/{obj.key}: BadDigest: the "
                f"{obj.size} bytes: {wrong}, twice; not used"
            )
        self.mismatches.add(obj.key)
        return wrong
