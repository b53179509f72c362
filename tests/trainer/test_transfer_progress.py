"""The progress an `s3://` transfer reports (log and status) never passes its total."""

from __future__ import annotations

from kubetune_api.status import Upload
from kubetune_trainer.storage.object_store import TransferProgress


def test_bytes_counted_twice_never_pass_the_total_and_done_is_every_byte() -> None:
    """s3transfer counted one file's bytes twice in CI when SeaweedFS got a cut PutObject body
    and botocore sent the request again: the upload logged 107%, and its final status named
    more bytes than the bucket held. Counts are capped at the total; done reports the total."""
    reports: list[Upload] = []
    progress = TransferProgress("uploaded", 1000, "s3://b/p/", reports.append)
    progress.add(600)
    progress.add(600)  # the same file's bytes again
    assert [(r.bytes, r.percent, r.done) for r in reports] == [(600, 60, False), (1000, 99, False)]
    progress.rewind(600)  # the files the upload sends again start from zero
    assert progress.state(40).bytes == 600
    final = progress.state(100, done=True)
    assert (final.bytes, final.totalBytes, final.percent, final.done) == (1000, 1000, 100, True)
    empty = TransferProgress("uploaded", 0, "s3://b/q/").state(100, done=True)
    assert (empty.bytes, empty.totalBytes) == (0, 0)
