"""Uploaded files in object storage: the FileStore of files.py on an S3 bucket, for clusters
whose jobs read their data from object storage (docs/openai-api.md, docs/object-storage.md).

Files are kept per namespace under the prefix (`<prefix><namespace>/<file-id>/`), as on the
volume: `upload.jsonl` (served by `/content`), `training.jsonl` (what the FineTuneJob reads)
and `meta.json`, written last: a file whose `meta.json` is missing does not exist, so a crash
mid-put never shows half a file. Deleting removes `meta.json` first.

The API authenticates to the bucket with the SDK's default chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY from a Secret, IRSA, Pod Identity). The FineTuneJobs it creates read the
training copy as an `s3://` source with `connection`: the endpoint settings and the name of a
Secret holding the keys in each job's namespace (or none: the job's ServiceAccount's identity).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from kubetune.openai_api.files import FILE_ID, StoredFile
from kubetune_api.s3_spec import S3Connection, S3Location

META = "meta.json"


class S3FileStore:
    def __init__(self, uri: str, connection: S3Connection) -> None:
        import boto3
        from botocore.config import Config

        loc = S3Location.parse(uri)
        self.bucket = loc.bucket
        self.prefix = loc.key if not loc.key or loc.key.endswith("/") else loc.key + "/"
        self.connection = connection
        self.s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=connection.endpoint,
            config=Config(
                region_name=connection.region,
                s3={"addressing_style": "path" if connection.pathStyle else "auto"},
                retries={"max_attempts": 4, "mode": "standard"},
            ),
        )

    def _key(self, namespace: str, file_id: str, name: str) -> str:
        return f"{self.prefix}{namespace}/{file_id}/{name}"

    def put(self, namespace: str, meta: StoredFile, upload: bytes, training: bytes) -> None:
        for name, body in (("upload.jsonl", upload), ("training.jsonl", training)):
            self.s3.put_object(
                Bucket=self.bucket, Key=self._key(namespace, meta.id, name), Body=body
            )
        meta_key = self._key(namespace, meta.id, META)
        self.s3.put_object(Bucket=self.bucket, Key=meta_key, Body=json.dumps(asdict(meta)))

    def get(self, namespace: str, file_id: str) -> StoredFile | None:
        if not FILE_ID.match(file_id):
            return None
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self._key(namespace, file_id, META))
        except self.s3.exceptions.NoSuchKey:
            return None
        return StoredFile(**json.loads(body["Body"].read()))

    def list(self, namespace: str) -> list[StoredFile]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}{namespace}/"
        )
        found = []
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(f"/{META}"):
                    file_id = obj["Key"].rsplit("/", 2)[-2]
                    if (meta := self.get(namespace, file_id)) is not None:
                        found.append(meta)
        return found

    def content(self, namespace: str, file_id: str) -> bytes:
        key = self._key(namespace, file_id, "upload.jsonl")
        data: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def delete(self, namespace: str, file_id: str) -> bool:
        if self.get(namespace, file_id) is None:
            return False
        for name in (META, "upload.jsonl", "training.jsonl"):  # gone once meta.json is
            self.s3.delete_object(Bucket=self.bucket, Key=self._key(namespace, file_id, name))
        return True

    def training_source(self, namespace: str, file_id: str) -> str:
        return f"s3://{self.bucket}/{self._key(namespace, file_id, 'training.jsonl')}"

    def training_connection(self) -> dict[str, Any] | None:
        return self.connection.to_wire()
