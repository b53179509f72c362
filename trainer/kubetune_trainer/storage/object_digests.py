"""How a download's bytes are checked, decided from the object's HEAD before they arrive and
computed as they arrive (object_fetch.fetch_objects hashes each piece it streams to disk, so no
byte is read twice): by the object's flexible checksum when it has one this image computes,
else by its ETag when that is an MD5, else by size alone.

- **Checksums** (`x-amz-checksum-*`, returned by a HEAD with `ChecksumMode=ENABLED`): CRC32
  (zlib-ng's, `_Crc32`), SHA-1 and SHA-256 (botocore's classes). A
  full-object checksum covers the bytes; a composite one (`…-N`, multipart uploads) is the
  checksum of the parts' checksums, every part but the last of the same size. boto3 (since
  1.36) and AWS S3 put a checksum on every new object; CRC32C and CRC64NVME need awscrt, which
  this image does not have, so objects with only those are checked by their ETag.
- **ETags**: a single-part upload's is the MD5 of its bytes, a multipart one's the MD5 of its
  parts' MD5s — as AWS S3, MinIO, Ceph RGW and SeaweedFS compute them, except under SSE-KMS,
  DSSE-KMS or SSE-C (AWS), whose ETags are no MD5: such an object without a checksum this image
  computes is checked by size only, and the log says so.

A check by parts fetches whole parts, several to a ranged GET, each part digested on its own;
a check over the whole object fetches it in one GET; a check by size alone in ranges of any
size (`Check.pieces`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The checksum fields of a HEAD that this image computes (`_hasher`); every one frees the GIL
# while it hashes, so the download's threads digest in parallel.
CHECKSUMS = ("ChecksumCRC32", "ChecksumSHA256", "ChecksumSHA1")


class _Crc32:
    """CRC32 by zlib-ng's vectorised code: 40–50 GiB/s here against 4 for CPython's zlib, which
    botocore's own CRC32 class calls, and 0.7 for MD5 (docs/benchmarks.md)."""

    def __init__(self) -> None:
        from zlib_ng import zlib_ng  # only s3:// downloads need it (docs/development.md)

        self.crc32 = zlib_ng.crc32
        self.value = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self.value = self.crc32(chunk, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _hasher(field: str) -> Callable[[], Any]:
    """A HEAD's checksum field → the class that computes it (botocore's own for the SHAs,
    imported only when one is used)."""
    if field == "ChecksumCRC32":
        return _Crc32
    from botocore import httpchecksum

    return {
        "ChecksumSHA256": httpchecksum.Sha256Checksum,
        "ChecksumSHA1": httpchecksum.Sha1Checksum,
    }[field]


# SSE-KMS ("aws:kms"), DSSE-KMS ("aws:kms:dsse"): AWS's ETag is then no MD5 of the bytes.
KMS = ("aws:kms", "aws:kms:dsse")


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


@dataclass(frozen=True)
class Check:
    """How one object's bytes are checked. `how` names it (a checksum, the ETag, or the size
    alone, with why); `new` makes a hasher with `update` and `digest` (None: size only);
    `value` is the digest the bytes must give (base64 for a checksum, hex for an ETag);
    `part` is None for one digest over all the bytes, else the size of the parts whose
    digests, `parts` of them, are digested again (a composite value)."""

    how: str
    new: Callable[[], Any] | None = None
    value: str = ""
    part: int | None = None
    parts: int = 1
    encoding: str = "hex"

    def pieces(self, size: int, default: int) -> list[tuple[int, int]]:
        """The (start, length) ranges fetched one GET each: whole parts, about `default` bytes
        of them, when the check is by parts (each part digested on its own as it streams by);
        the whole object when one digest covers it; else ranges of `default` bytes."""
        if size == 0:
            return [(0, 0)]
        if self.part:
            step = max(1, default // self.part) * self.part
        else:
            step = size if self.new else default
        return [(start, min(step, size - start)) for start in range(0, size, step)]

    def digester(self) -> Digester | None:
        """What digests a piece's bytes as they stream by (None when the check is by size);
        pieces start on a part's first byte."""
        return Digester(self.new, self.part) if self.new is not None else None

    def wrong(self, size: int, digests: list[bytes]) -> str:
        """What is wrong with `size` bytes whose parts (or whole) gave `digests`, or ""."""
        if self.new is None:
            return ""
        if self.part is not None:
            if len(digests) != self.parts:
                return (
                    f"they are not the {self.parts} parts of {self.part} bytes its "
                    f"{self.how} was computed over"
                )
            whole = self.new()
            whole.update(b"".join(digests))
            digest = whole.digest()
        else:
            digest = digests[0]
        got = base64.b64encode(digest).decode() if self.encoding == "base64" else digest.hex()
        if got == self.value:
            return ""
        return f"the bytes do not give its {self.how.split(' (')[0]} {self.expected}"

    @property
    def expected(self) -> str:
        """The value as the object's HEAD shows it (`…-N` for a composite one)."""
        return f"{self.value}-{self.parts}" if self.part is not None else self.value


class Digester:
    """The digests of a piece's bytes fed in order: one per `part` bytes (the last may be
    shorter), or one over them all when `part` is None."""

    def __init__(self, new: Callable[[], Any], part: int | None) -> None:
        self.new, self.part = new, part
        self.hasher = new()
        self.fed = 0  # bytes fed to the current hasher
        self.digests: list[bytes] = []

    def update(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            room = len(view) if self.part is None else self.part - self.fed
            self.hasher.update(view[:room])
            self.fed += min(room, len(view))
            view = view[room:]
            if self.fed == self.part:
                self.digests.append(self.hasher.digest())
                self.hasher, self.fed = self.new(), 0

    def finish(self) -> list[bytes]:
        if self.fed or not self.digests:
            self.digests.append(self.hasher.digest())
        return self.digests


def plan(etag: str, found: dict[str, Any], part: Callable[[], int | None]) -> Check:
    """The check for an object with this ETag and HEAD (`ChecksumMode=ENABLED`): its checksum if
    it has one this image computes, else its ETag, else its size alone (SSE-KMS or SSE-C without
    such a checksum, an ETag that is no MD5, parts of unknown size). `part` gives the size of a
    multipart object's parts (a HEAD with partNumber=1), asked only for a composite value."""
    asked: list[int | None] = []

    def parts_of() -> int | None:  # one HEAD at most
        if not asked:
            asked.append(part())
        return asked[0]

    for field in CHECKSUMS:
        value = found.get(field)
        if not value:
            continue
        name = field.removeprefix("Checksum")
        digest, _, count = value.partition("-")
        if not count:
            return Check(name, _hasher(field), digest, encoding="base64")
        if each := parts_of():
            return Check(name, _hasher(field), digest, each, int(count), "base64")
    if found.get("ServerSideEncryption") in KMS or found.get("SSECustomerAlgorithm"):
        return Check("size only (its ETag is no MD5 under SSE-KMS or SSE-C)")
    digest, _, count = etag.strip('"').partition("-")
    if len(digest) != 32:
        return Check("size only (its ETag is no MD5)")
    if not count:
        return Check("ETag (MD5)", _md5, digest)
    if each := parts_of():
        return Check("ETag (MD5 of parts)", _md5, digest, each, int(count))
    return Check("size only (the server does not say its part size)")
