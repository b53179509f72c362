"""The local control plane's S3 server (SeaweedFS, hack/cluster/s3_server.py), driven with the
real AWS client (boto3), as users fill their buckets."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LocalS3:
    endpoint: str
    """Where the tests reach it."""
    credentials_file: Path
    job_endpoint: str | None = None
    """Where the jobs' pods reach it, when not at `endpoint` (kind: its Service)."""

    def keys(self, identity: str = "admin") -> dict[str, str]:
        """`admin` may do everything; `denied` is refused every bucket (AccessDenied)."""
        keys: dict[str, str] = json.loads(self.credentials_file.read_text())[identity]
        return keys

    def client(self, identity: str = "admin", **config: Any) -> Any:
        """A boto3 S3 client of `identity`; `config`: more botocore Config settings."""
        import boto3
        from botocore.config import Config

        key = self.keys(identity)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["accessKeyId"],
            aws_secret_access_key=key["secretAccessKey"],
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def bucket(self) -> str:
        """A new, empty bucket of its own for one test."""
        name = f"kt-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def put_tree(self, bucket: str, prefix: str, folder: Path) -> list[str]:
        s3 = self.client()
        keys = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            s3.upload_file(str(path), bucket, key)
            keys.append(key)
        return keys

    def listing(self, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return {o["Key"]: o for page in pages for o in page.get("Contents", [])}

    def connection(self, secret: str | None = None) -> dict[str, Any]:
        """The FineTuneJob's `s3` for this server (credentials from `secret` when given)."""
        endpoint = self.job_endpoint or self.endpoint
        conn: dict[str, Any] = {"endpoint": endpoint, "region": "us-east-1", "pathStyle": True}
        if secret:
            conn["credentials"] = {"name": secret}
        return conn

    def secret(self, name: str, identity: str = "admin") -> dict[str, Any]:
        """A Secret with an identity's keys under the keys `s3.credentials` defaults to."""
        key = self.keys(identity)
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": "Opaque",
            "stringData": {
                "AWS_ACCESS_KEY_ID": key["accessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["secretAccessKey"],
            },
        }


def wrong_bytes(check: Any, data: bytes) -> str:
    """What object_fetch finds wrong with `data` under `check` (object_digests.Check): its
    bytes digested as one streamed piece, and the check's verdict ("" when nothing)."""
    digester = check.digester()
    if digester is None:
        return str(check.wrong(len(data), []))
    digester.update(data)
    return str(check.wrong(len(data), digester.finish()))
