"""Whether a downloaded file's bytes are the object's: by the object's flexible checksum when it
has one this image computes, else by its ETag when that is an MD5, else by size alone.

- **Checksums** (`x-amz-checksum-*`, returned by a HEAD with `ChecksumMode=ENABLED`): CRC32
  (about 5× faster than MD5 here), SHA-1 and SHA-256, by botocore's checksum classes. A
  full-object checksum covers the bytes; a composite one (`…-N`, multipart uploads) is the
  checksum of the parts' checksums, every part but the last of the same size. boto3 (since
  1.36) and AWS S3 put a checksum on every new object; CRC32C and CRC64NVME need awscrt, which
  this image does not have, so objects with only those are checked by their ETag.
- **ETags**: a single-part upload's is the MD5 of its bytes, a multipart one's the MD5 of its
  parts' MD5s — as AWS S3, MinIO, Ceph RGW and SeaweedFS compute them, except under SSE-KMS,
  DSSE-KMS or SSE-C (AWS), whose ETags are no MD5: such an object without a checksum this image
  computes is checked by size only, and the log says so.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PIECE = 4 << 20


# The checksum fields of a HEAD that botocore's own classes compute without awscrt
# (`_hasher`; zlib's CRC32 frees the GIL above 5 KiB, as hashlib does).
CHECKSUMS = ("ChecksumCRC32", "ChecksumSHA256", "ChecksumSHA1")


def _hasher(field: str) -> Callable[[], Any]:
    """A HEAD's checksum field → botocore's class for it (imported only when a file is checked)."""
    from botocore import httpchecksum

    return {
        "ChecksumCRC32": httpchecksum.Crc32Checksum,
        "ChecksumSHA256": httpchecksum.Sha256Checksum,
        "ChecksumSHA1": httpchecksum.Sha1Checksum,
    }[field]


# SSE-KMS ("aws:kms"), DSSE-KMS ("aws:kms:dsse"): AWS's ETag is then no MD5 of the bytes.
KMS = ("aws:kms", "aws:kms:dsse")


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


@dataclass(frozen=True)
class Verdict:
    """`wrong`: what is wrong with the bytes, "" when they are the object's; `how`: what
    checked them (a checksum, the ETag, or the size alone)."""

    wrong: str
    how: str


def _digest(path: Path, new: Callable[[], Any], start: int = 0, length: int = -1) -> bytes:
    one = new()
    with path.open("rb") as f:
        f.seek(start)
        while length and (chunk := f.read(PIECE if length < 0 else min(length, PIECE))):
            one.update(chunk)
            length -= len(chunk) if length > 0 else 0
    digest: bytes = one.digest()
    return digest


def _of_parts(path: Path, new: Callable[[], Any], count: int, part: int) -> bytes | None:
    """The digest (by `new`) of the parts' digests, or None when the file cannot be `count`
    parts of `part` bytes (the last one shorter or equal)."""
    size = path.stat().st_size
    if size > part * count or size <= part * (count - 1):
        return None
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # hashing frees the GIL
        digests = pool.map(lambda i: _digest(path, new, i * part, part), range(count))
        whole = new()
        whole.update(b"".join(digests))
        combined: bytes = whole.digest()
        return combined


def etag_matches(path: Path, etag: str, part: int | None) -> bool:
    """Whether the file's bytes give the object's ETag: a single-part upload's is the MD5 of its
    bytes, a multipart one's (`…-N`) the MD5 of its parts' MD5s (see above), with every part but
    the last of `part` bytes (None: the server did not say; unchecked)."""
    digest, _, count = etag.strip('"').partition("-")
    if len(digest) != 32:
        return True  # not an MD5 (e.g. a GCS composite object)
    if not count:
        return _digest(path, _md5).hex() == digest
    if part is None:
        return True
    return (_of_parts(path, _md5, int(count), part) or b"").hex() == digest


def checksum_matches(path: Path, field: str, value: str, part: int | None) -> bool | None:
    """Whether the file's bytes give the object's checksum `value` (a HEAD's `field`, base64,
    `…-N` when composite); None when it cannot tell (a composite one without the part size)."""
    digest, _, count = value.partition("-")
    new = _hasher(field)
    if not count:
        return base64.b64encode(_digest(path, new)).decode() == digest
    if part is None:
        return None
    combined = _of_parts(path, new, int(count), part)
    return combined is not None and base64.b64encode(combined).decode() == digest


def verdict(path: Path, etag: str, head: Callable[[], dict[str, Any]], part: int | None) -> Verdict:
    """Check the file against the object: its checksum if it has one this image computes, else
    its ETag, else its size alone (SSE-KMS or SSE-C without such a checksum). `head` is the
    object's HEAD with `ChecksumMode=ENABLED`, made only when needed: a single-part object
    whose MD5 matches its ETag needs none."""
    multipart = "-" in etag
    if not multipart and etag_matches(path, etag, None):
        return Verdict("", "ETag (MD5)")
    found = head()
    for field in CHECKSUMS:
        value = found.get(field)
        if value:
            name = field.removeprefix("Checksum")
            ok = checksum_matches(path, field, value, part)
            if ok is not None:
                return Verdict("" if ok else f"the bytes do not give its {name} {value}", name)
    if found.get("ServerSideEncryption") in KMS or found.get("SSECustomerAlgorithm"):
        return Verdict("", "size only (its ETag is no MD5 under SSE-KMS or SSE-C)")
    if multipart and etag_matches(path, etag, part):
        return Verdict("", "ETag (MD5 of parts)")
    return Verdict(f"the bytes do not give its ETag {etag}", "ETag")
