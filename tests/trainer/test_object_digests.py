"""object_digests.verdict where no server here can answer: AWS's SSE-KMS and SSE-C objects,
whose ETags are no MD5 of the bytes (AWS S3's documented behaviour; SeaweedFS here runs without
a KMS). The HEADs are AWS's response fields, written here; the checks against a real server's
ETags and checksums are in tests/cluster/test_object_store.py."""

from __future__ import annotations

import base64
import hashlib
import zlib
from pathlib import Path
from typing import Any

from kubetune_trainer.storage.object_digests import verdict

KMS_ETAG = '"a8e0ef3c5e2b5cd0fb4db3e2e0d8f1c2"'  # 32 hex digits, not the MD5 of the bytes


def asked(found: dict[str, Any], heads: list[int]) -> Any:
    def head() -> dict[str, Any]:
        heads.append(1)
        return found

    return head


def test_a_matching_md5_needs_no_head_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"weights")
    heads: list[int] = []
    md5 = f'"{hashlib.md5(b"weights").hexdigest()}"'
    assert verdict(path, md5, asked({}, heads), None).how == "ETag (MD5)" and heads == []
    found = verdict(path, KMS_ETAG, asked({"ServerSideEncryption": "AES256"}, heads), None)
    assert found.wrong == f"the bytes do not give its ETag {KMS_ETAG}" and heads == [1]


def test_sse_kms_and_sse_c_objects_are_checked_by_checksum_else_by_size(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"weights")
    crc = base64.b64encode(zlib.crc32(b"weights").to_bytes(4, "big")).decode()
    for encryption in (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:aws:kms:…"},
        {"ServerSideEncryption": "aws:kms:dsse"},
        {"SSECustomerAlgorithm": "AES256", "SSECustomerKeyMD5": "…"},
    ):
        found = verdict(path, KMS_ETAG, asked(encryption, []), None)
        assert found.wrong == "" and found.how.startswith("size only"), encryption
        checked = verdict(path, KMS_ETAG, asked({**encryption, "ChecksumCRC32": crc}, []), None)
        assert checked.wrong == "" and checked.how == "CRC32", encryption
        path.write_bytes(b"weightz")
        refused = verdict(path, KMS_ETAG, asked({**encryption, "ChecksumCRC32": crc}, []), None)
        assert refused.wrong == f"the bytes do not give its CRC32 {crc}", encryption
        path.write_bytes(b"weights")
