"""Checkpoints in object storage (`output.uploadCheckpoints`): a job whose volume is lost resumes
from the bucket.

Upload: rank 0 hands every complete checkpoint to `CheckpointUploader`, whose one background
thread uploads it to `<output.uri>/checkpoints/checkpoint-<step>/`, the completion marker
(`checkpoints.MARKER`) last, so training does not wait on the network. A checkpoint that
completes while another uploads waits; a newer one replaces a waiting one. After an upload, the
bucket keeps the newest `training.saveTotalLimit` complete checkpoints: an older one loses its
marker first, so a reader never takes a half-deleted one; leftovers without a marker (a run
killed while uploading or deleting) older than the kept ones go too. The local rotation leaves
the checkpoint being uploaded alone. Training's end (and a SIGTERM stop) waits for the last upload.

Restore: before the resume is chosen, each node's first rank compares the volume's latest
complete checkpoint with the bucket's; when the bucket's is newer (a new volume has none), it
downloads it (sizes and ETags checked, as every download) into a staging folder that the
checkpoint listing ignores, then renames it into place.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune_api.s3_spec import Located, S3Location, s3_locations
from kubetune_trainer.runtime.checkpoints import MARKER, latest_complete, step_of
from kubetune_trainer.runtime.lease import lease
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.object_checks import ObjectStoreError, describe
from kubetune_trainer.storage.object_fetch import fetch_objects
from kubetune_trainer.storage.object_store import Listed, client
from kubetune_trainer.storage.object_upload import upload

PREFIX = "checkpoints/"
STAGING = ".restoring"


def checkpoint_location(config: Any) -> Located | None:
    """`<output.uri>/checkpoints/` with the output's connection, when uploads are on."""
    if not (config.output.uri and config.output.uploadCheckpoints):
        return None
    out = next(w for w in s3_locations(config) if w.field == "output.uri")
    base = out.uri if out.uri.endswith("/") else out.uri + "/"
    return Located("output.uploadCheckpoints", base + PREFIX, out.connection, out.env)


@dataclass(frozen=True)
class Remote:
    step: int
    objects: list[Listed]

    @property
    def folder(self) -> str:
        return f"checkpoint-{self.step}"

    @property
    def complete(self) -> bool:
        return any(o.key.endswith(f"/{MARKER}") for o in self.objects)


def remote_checkpoints(s3: Any, where: Located, *, incomplete: bool = False) -> list[Remote]:
    """The bucket's complete checkpoints (their marker is there), oldest first; with
    `incomplete`, also those without a marker (an upload or a deletion cut short)."""
    loc = S3Location.parse(where.uri)
    by_folder: dict[str, list[Listed]] = {}
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=loc.key)
        for page in pages:
            for obj in page.get("Contents", []):
                folder = obj["Key"].removeprefix(loc.key).split("/", 1)[0]
                listed = Listed(obj["Key"], obj["Size"], obj["ETag"])
                by_folder.setdefault(folder, []).append(listed)
    except Exception as err:
        raise describe(err, where, loc.key) from None
    found = []
    for folder, objects in by_folder.items():
        step = step_of(Path(folder))
        if step is not None and (incomplete or Remote(step, objects).complete):
            found.append(Remote(step, objects))
    return sorted(found, key=lambda r: r.step)


def restore(config: Any, root: Path) -> Path | None:
    """Download the bucket's latest complete checkpoint into `root` when it is newer than the
    volume's; return it, or None when the volume's is as new (or uploads are off)."""
    where = checkpoint_location(config)
    return None if where is None else restore_from(where, root)


def restore_from(where: Located, root: Path) -> Path | None:
    """`restore` for a checkpoints prefix."""
    root.mkdir(parents=True, exist_ok=True)
    with lease(
        root / ".restore.lock",
        on_wait=lambda: log(f"waiting: another rank is restoring checkpoints from {where.uri}"),
    ):
        s3 = client(where)
        remote = remote_checkpoints(s3, where)
        local = latest_complete(root)
        local_step = step_of(local) if local is not None else None
        if not remote or (local_step is not None and local_step >= remote[-1].step):
            return None
        newest = remote[-1]
        staging = root / (newest.folder + STAGING)
        base = S3Location.parse(where.uri).key + newest.folder + "/"
        log(
            f"restoring {newest.folder} from {where.uri} (the volume's latest complete "
            f"checkpoint: {local.name if local else 'none'})"
        )
        fetch_objects(s3, where, newest.objects, staging, base)
        target = root / newest.folder
        if target.exists():  # an incomplete one (no marker): the bucket's replaces it
            shutil.rmtree(target)
        os.replace(staging, target)
        log(f"restored {newest.folder} from {where.uri}")
        return target


class CheckpointUploader:
    """Rank 0's background uploads of complete checkpoints (see the module's docstring)."""

    def __init__(self, where: Located, keep: int) -> None:
        self.where, self.keep = where, keep
        self.lock = threading.Condition()
        self.waiting: Path | None = None
        self.uploading: Path | None = None
        self.error: ObjectStoreError | None = None
        self.thread = threading.Thread(target=self._run, name="checkpoint-upload", daemon=True)
        self.closed = False
        self.thread.start()

    def submit(self, folder: Path) -> None:
        """Queue a complete checkpoint; raise the error of an earlier upload that failed."""
        with self.lock:
            if self.error is not None:
                raise self.error
            self.waiting = folder
            self.lock.notify_all()

    def busy_with(self) -> Path | None:
        with self.lock:
            return self.uploading

    def finish(self) -> None:
        """Wait for the queued and running uploads; raise the error of one that failed."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            with self.lock:
                while self.waiting is None and not self.closed:
                    self.lock.wait()
                if self.waiting is None:
                    return
                folder, self.waiting, self.uploading = self.waiting, None, self.waiting
            try:
                self._upload(folder)
            except ObjectStoreError as err:
                log(f"checkpoint upload failed (the checkpoint stays on the volume): {err}")
                with self.lock:
                    self.error = err
            finally:
                with self.lock:
                    self.uploading = None

    def _upload(self, folder: Path) -> None:
        where = self.where
        target = Located(where.field, where.uri + folder.name + "/", where.connection, where.env)
        upload(folder, target, last=MARKER, what=folder.name)
        s3 = client(where)
        bucket = S3Location.parse(where.uri).bucket
        every = remote_checkpoints(s3, where, incomplete=True)
        kept = [r.step for r in every if r.complete][-self.keep :]
        # older complete ones beyond the limit, and leftovers without a marker older than the
        # oldest kept (a run killed while uploading or deleting them)
        for old in (r for r in every if r.step < kept[0] if r.step not in kept):
            keys = sorted((o.key for o in old.objects), key=lambda k: not k.endswith(MARKER))
            for key in keys:  # the marker first: from then on, not a complete checkpoint
                try:
                    s3.delete_object(Bucket=bucket, Key=key)
                except Exception as err:
                    raise describe(err, where, key) from None
