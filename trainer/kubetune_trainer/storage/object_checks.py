"""What an s3:// transfer checks and how it fails: errors that name the field, bucket, key and
S3's code (never a credential), which errors may pass (transient) and the backoff between
rounds of sending again, and a multipart object's part size. Whether a downloaded file's bytes
are the object's: object_digests.py."""

from __future__ import annotations

import os
import time
from typing import Any

from kubetune_api.s3_spec import Located, S3Location
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.errors import SourceError


class ObjectStoreError(SourceError):
    """An s3:// location that cannot be read or written; the message names it and the code."""


def _secrets(where: Located) -> list[str]:
    env = where.env
    if env is None:
        return []
    names = (env.access_key_id, env.secret_access_key, env.session_token)
    return [v for v in (os.environ.get(n) for n in names) if v]


def describe(err: BaseException, where: Located, key: str) -> ObjectStoreError:
    """One line naming the field, the object and S3's error code, with credentials cut out."""
    from botocore.exceptions import BotoCoreError, ClientError

    loc = S3Location.parse(where.uri)
    target = f"s3://{loc.bucket}/{key}"
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or str(status)
        if code == "403":  # a HEAD has no body: S3 says only 403
            code = "AccessDenied"
        message = f"{where.field}: {target}: {code} (HTTP {status}): {error.get('Message', '')}"
    elif isinstance(err, BotoCoreError):
        message = f"{where.field}: {target}: {type(err).__name__}: {err}"
    else:
        message = f"{where.field}: {target}: {type(err).__name__}: {err}"
    for secret in _secrets(where):
        message = message.replace(secret, "***")
    return ObjectStoreError(message.rstrip(": "))


def error_code(err: BaseException) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


RETRY_WINDOW_S = 300.0
"""How long a transfer keeps sending again what failed on a transient error (the server
unreachable or restarting, 5xx, throttling) after boto3's own retries gave up."""


class ShortDownload(Exception):
    """A download whose bytes are not the object's: fewer than its size arrived, or they do not
    give its checksum or ETag (a SeaweedFS restarted mid-download once served an 8 MiB range of
    zeros); fetched once more (object_fetch.py)."""


def transient(err: BaseException) -> bool:
    """An error that may pass: the connection (refused, closed, cut mid-body, timed out), a
    5xx, throttling, a download whose bytes were wrong once."""
    from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    last = getattr(err, "last_exception", None)  # s3transfer's RetriesExceededError: the cause
    if isinstance(last, BaseException):
        err = last
    if isinstance(err, BotoConnectionError | HTTPClientError | IncompleteReadError | ShortDownload):
        return True
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return int(status) >= 500 or error_code(err) in ("SlowDown", "RequestTimeout", "Throttling")
    return False


class Backoff:
    """Waits between rounds of sending again: 1 s, doubling up to 10 s (a server that restarts
    serves again within one round of it being up), within RETRY_WINDOW_S; past it, the last
    error is raised."""

    def __init__(self, where: Located) -> None:
        self.where = where
        self.deadline = time.monotonic() + RETRY_WINDOW_S
        self.delay = 1.0

    def wait(self, err: BaseException, key: str, what: str) -> None:
        if not transient(err) or time.monotonic() + self.delay > self.deadline:
            raise describe(err, self.where, key) from None
        log(f"{describe(err, self.where, key)}; sending {what} again in {self.delay:.0f} s")
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, 10.0)


def with_backoff(where: Located, key: str, request: Any) -> Any:
    """One request's result, the request sent again on a transient error (Backoff)."""
    backoff = Backoff(where)
    while True:
        try:
            return request()
        except Exception as err:
            backoff.wait(err, key, key)


def part_size(s3: Any, where: Located, bucket: str, key: str) -> int | None:
    """The size of a multipart object's first part (HEAD with partNumber=1), None when the
    server refuses the question (a 4xx); a transient error is retried (with_backoff)."""
    try:
        head = with_backoff(
            where, key, lambda: s3.head_object(Bucket=bucket, Key=key, PartNumber=1)
        )
    except ObjectStoreError:
        return None
    return int(head["ContentLength"])


def head_with_checksums(s3: Any, where: Located, bucket: str, key: str) -> dict[str, Any]:
    """The object's HEAD with its flexible checksum, if it has one (`ChecksumMode=ENABLED`);
    transient errors are retried (with_backoff)."""
    found: dict[str, Any] = with_backoff(
        where, key, lambda: s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    )
    return found
