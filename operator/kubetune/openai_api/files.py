"""Where uploaded files live: a small store interface, and its filesystem implementation (a
files PersistentVolumeClaim mounted into the API's pod).

Files are kept per namespace (`<root>/<namespace>/<file-id>/`), so one namespace never sees
another's. Each file keeps the upload as it came (`upload.jsonl`, served by `/content`), the
training copy (`training.jsonl`, what the FineTuneJob reads) and its `meta.json`.

A FineTuneJob reads the training copy through `training_source`: for this store
`pvc://<claim>/<namespace>/<file-id>/training.jsonl`, the same volume claimed under the same
name in the job's namespace (an RWX volume shared across namespaces, or the API's own
namespace). The object-storage store (s3_files.py) keeps the same files in a bucket and gives
`s3://` sources with their connection (docs/openai-api.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

FILE_ID = re.compile(r"^file-[a-z0-9]{24}$")


@dataclass(frozen=True)
class StoredFile:
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    kind: str
    examples: int

    def openai(self) -> dict[str, Any]:
        """The `file` object, as OpenAI's API returns it."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


class FileStore(Protocol):
    def put(self, namespace: str, meta: StoredFile, upload: bytes, training: bytes) -> None: ...

    def get(self, namespace: str, file_id: str) -> StoredFile | None: ...

    def list(self, namespace: str) -> list[StoredFile]: ...

    def content(self, namespace: str, file_id: str) -> bytes: ...

    def delete(self, namespace: str, file_id: str) -> bool: ...

    def training_source(self, namespace: str, file_id: str) -> str: ...

    def training_connection(self) -> dict[str, Any] | None:
        """The `s3` connection FineTuneJobs read `training_source` with (None: not s3://)."""


class FilesystemStore:
    """Files on a mounted volume; writes land in a temporary folder renamed into place, so a
    crash never leaves half a file that looks whole."""

    def __init__(self, root: Path, claim: str) -> None:
        self.root = root
        self.claim = claim

    def _folder(self, namespace: str, file_id: str) -> Path | None:
        if not FILE_ID.match(file_id):
            return None
        return self.root / namespace / file_id

    def put(self, namespace: str, meta: StoredFile, upload: bytes, training: bytes) -> None:
        final = self.root / namespace / meta.id
        staging = self.root / namespace / f".{meta.id}.partial"
        staging.mkdir(parents=True)
        (staging / "upload.jsonl").write_bytes(upload)
        (staging / "training.jsonl").write_bytes(training)
        (staging / "meta.json").write_text(json.dumps(asdict(meta)))
        os.rename(staging, final)

    def get(self, namespace: str, file_id: str) -> StoredFile | None:
        folder = self._folder(namespace, file_id)
        if folder is None or not (folder / "meta.json").is_file():
            return None
        return StoredFile(**json.loads((folder / "meta.json").read_text()))

    def list(self, namespace: str) -> list[StoredFile]:
        base = self.root / namespace
        found = [self.get(namespace, p.name) for p in base.iterdir()] if base.is_dir() else []
        return [f for f in found if f is not None]

    def content(self, namespace: str, file_id: str) -> bytes:
        folder = self._folder(namespace, file_id)
        assert folder is not None
        return (folder / "upload.jsonl").read_bytes()

    def delete(self, namespace: str, file_id: str) -> bool:
        folder = self._folder(namespace, file_id)
        if folder is None or not folder.is_dir():
            return False
        shutil.rmtree(folder)
        return True

    def training_source(self, namespace: str, file_id: str) -> str:
        return f"pvc://{self.claim}/{namespace}/{file_id}/training.jsonl"

    def training_connection(self) -> dict[str, Any] | None:
        return None
