"""s3:// uploads (`output.uri` after the export, checkpoints with `output.uploadCheckpoints`)
through boto3's transfer manager (s3transfer: multipart PUTs, parallel parts, boto3's retries).

Every file but the last one (`manifest.json`, or a checkpoint's completion marker) is sent
first, that one last: a reader that finds it finds every file it lists. An earlier one under
the same prefix is deleted before the upload starts. Files that fail on a transient error
(the server unreachable or restarting, a 5xx, throttling) after boto3's own retries are sent
again, with backoff, for up to object_checks.RETRY_WINDOW_S; errors name the bucket, key and
S3's code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubetune_api.s3_spec import Located, S3Location
from kubetune_api.status import Upload
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.object_checks import Backoff, describe, transient, with_backoff
from kubetune_trainer.storage.object_store import (
    MANIFEST,
    TransferProgress,
    client,
    files_under,
    transfer_config,
)


def _send(s3: Any, bucket: str, pairs: list[tuple[Path, str]], subscribers: list[Any]) -> Any:
    """One round: every (file, key) through s3transfer; the ones that failed, with the error."""
    from boto3.s3.transfer import create_transfer_manager

    failed: list[tuple[Path, str, BaseException]] = []
    with create_transfer_manager(s3, transfer_config()) as manager:
        futures = [
            (p, k, manager.upload(str(p), bucket, k, subscribers=subscribers)) for p, k in pairs
        ]
        for path, key, future in futures:
            try:
                future.result()
            except Exception as err:
                failed.append((path, key, err))
    return failed


def upload(
    folder: Path,
    where: Located,
    last: str = MANIFEST,
    what: str = "the outputs",
    report: Callable[[Upload], None] | None = None,
) -> list[str]:
    """Upload every file under `folder` to the location as a prefix, `last` (the run manifest,
    or a checkpoint's completion marker) last, after deleting an earlier one; return the keys
    written. Files that fail on a transient error are sent again (Backoff). `report` gets the
    progress as the log does, and once more, done, after `last`."""
    loc = S3Location.parse(where.uri)
    prefix = loc.key if not loc.key or loc.key.endswith("/") else loc.key + "/"
    s3 = client(where)
    files = [p for p in files_under(folder) if p.relative_to(folder).as_posix() != last]
    manifest = folder / last
    # incomplete until the end
    with_backoff(
        where, prefix + last, lambda: s3.delete_object(Bucket=loc.bucket, Key=prefix + last)
    )
    total = sum(p.stat().st_size for p in files)
    log(f"uploading {what}: {len(files)} files ({total} bytes) to s3://{loc.bucket}/{prefix}")
    pairs = [(p, prefix + p.relative_to(folder).as_posix()) for p in files]
    keys = [k for _, k in pairs]
    progress = TransferProgress("uploaded", total, f"s3://{loc.bucket}/{prefix}", report)
    backoff = Backoff(where)
    while pairs:
        failed = _send(s3, loc.bucket, pairs, [progress.subscriber()])
        for _, key, err in failed:
            if not transient(err):
                raise describe(err, where, key) from None
        pairs = [(p, k) for p, k, _ in failed]
        if failed:
            progress.rewind(sum(p.stat().st_size for p, _ in pairs))
            backoff.wait(failed[0][2], failed[0][1], f"{len(pairs)} file(s)")
    if manifest.exists():
        with_backoff(
            where,
            prefix + last,
            lambda: s3.upload_file(str(manifest), loc.bucket, prefix + last),
        )
        keys.append(prefix + last)
    log(f"uploaded {what} to s3://{loc.bucket}/{prefix} ({last} last)")
    if report is not None:
        report(progress.state(100, done=True))
    return keys
