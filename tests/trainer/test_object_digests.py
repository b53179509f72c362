"""object_digests.plan and Check where no server here can answer: AWS's SSE-KMS and SSE-C
objects, whose ETags are no MD5 of the bytes (AWS S3's documented behaviour; SeaweedFS here runs
without a KMS), and the pieces a check fetches. The HEADs are AWS's response fields, written
here; the checks against a real server's ETags and checksums are in
tests/cluster/test_object_store.py."""

from __future__ import annotations

import base64
import hashlib
import zlib

from kubetune_trainer.storage.object_digests import plan
from tests.support.s3 import wrong_bytes

KMS_ETAG = '"a8e0ef3c5e2b5cd0fb4db3e2e0d8f1c2"'  # 32 hex digits, not the MD5 of the bytes
MIB = 1 << 20


def no_part_size() -> int | None:
    raise AssertionError("the part size is asked only for a composite value")


def test_a_single_part_object_is_checked_whole_by_its_crc32_else_its_md5() -> None:
    md5 = f'"{hashlib.md5(b"weights").hexdigest()}"'
    check = plan(md5, {}, no_part_size)
    assert check.how == "ETag (MD5)" and check.pieces(7, 32 * MIB) == [(0, 7)]
    assert wrong_bytes(check, b"weights") == ""
    assert wrong_bytes(check, b"weightz") == f"the bytes do not give its ETag {md5[1:-1]}"
    crc = base64.b64encode(zlib.crc32(b"weights").to_bytes(4, "big")).decode()
    check = plan(md5, {"ChecksumCRC32": crc}, no_part_size)  # the faster one, when there
    assert check.how == "CRC32" and wrong_bytes(check, b"weights") == ""
    assert wrong_bytes(check, b"weightz") == f"the bytes do not give its CRC32 {crc}"
    assert wrong_bytes(plan(KMS_ETAG, {"ServerSideEncryption": "AES256"}, no_part_size), b"w")


def test_sse_kms_and_sse_c_objects_are_checked_by_checksum_else_by_size() -> None:
    crc = base64.b64encode(zlib.crc32(b"weights").to_bytes(4, "big")).decode()
    for encryption in (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:aws:kms:…"},
        {"ServerSideEncryption": "aws:kms:dsse"},
        {"SSECustomerAlgorithm": "AES256", "SSECustomerKeyMD5": "…"},
    ):
        found = plan(KMS_ETAG, encryption, no_part_size)
        assert found.how.startswith("size only") and found.new is None, encryption
        assert wrong_bytes(found, b"weights") == "" and found.pieces(80 * MIB, 32 * MIB) == [
            (0, 32 * MIB),
            (32 * MIB, 32 * MIB),
            (64 * MIB, 16 * MIB),
        ]
        checked = plan(KMS_ETAG, {**encryption, "ChecksumCRC32": crc}, no_part_size)
        assert checked.how == "CRC32" and wrong_bytes(checked, b"weights") == "", encryption
        assert wrong_bytes(checked, b"weightz") == f"the bytes do not give its CRC32 {crc}"


def test_a_composite_value_is_checked_part_by_part_or_by_size_when_parts_are_unknown() -> None:
    data = bytes(range(256)) * (20 * MIB // 256) + b"tail!"  # 3 parts of 8 MiB, the last short
    parts = [data[i : i + 8 * MIB] for i in range(0, len(data), 8 * MIB)]
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    etag = f'"{hashlib.md5(md5s).hexdigest()}-3"'
    crcs = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    composite = base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode() + "-3"
    asked: list[int] = []

    def part_size() -> int:
        asked.append(1)
        return 8 * MIB

    check = plan(etag, {"ChecksumCRC32": composite}, part_size)
    assert check.how == "CRC32" and check.expected == composite and asked == [1]
    # 32 MiB GETs of whole parts (one here), 16 MiB ones (two), each part digested alone
    assert check.pieces(len(data), 32 * MIB) == [(0, len(data))]
    assert check.pieces(len(data), 16 * MIB) == [(0, 16 * MIB), (16 * MIB, 4 * MIB + 5)]
    assert wrong_bytes(check, data) == ""
    changed = data[:100] + b"\xff" + data[101:]
    assert wrong_bytes(check, changed) == f"the bytes do not give its CRC32 {composite}"
    assert wrong_bytes(check, data[: 16 * MIB]) == (
        "they are not the 3 parts of 8388608 bytes its CRC32 was computed over"
    )
    by_etag = plan(etag, {}, part_size)
    assert by_etag.how == "ETag (MD5 of parts)" and wrong_bytes(by_etag, data) == ""
    assert wrong_bytes(by_etag, changed) == f"the bytes do not give its ETag {etag[1:-1]}"
    unknown = plan(etag, {"ChecksumCRC32": composite}, lambda: None)
    assert unknown.how == "size only (the server does not say its part size)"


def test_parts_are_digested_alone_whatever_the_reads() -> None:
    """A piece streamed in 1 MiB reads whose ends never meet the parts' (5 MiB + 123 bytes)
    gives the same part digests as hashlib over each part."""
    data = bytes(range(256)) * (12 * MIB // 256)
    part = 5 * MIB + 123
    etag = '"' + "0" * 32 + '-3"'
    check = plan(etag, {}, lambda: part)
    digester = check.digester()
    assert digester is not None
    for start in range(0, len(data), MIB):
        digester.update(data[start : start + MIB])
    expected = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    assert digester.finish() == expected and len(expected) == 3
