"""kubetune's s3:// transfers (kubetune_trainer.storage.object_store) against the real S3 server of the
local control plane (SeaweedFS), with the buckets filled by the real AWS client: downloads
cached by ETag, partial objects never used, an object that changed mid-download refused,
errors that name the bucket, key and code and never a key, and uploads with the manifest last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import pytest
from boto3.s3.transfer import TransferConfig

import kubetune_trainer.storage.checkpoint_store as store
from kubetune_api.s3_spec import CredentialEnv, Located, S3Connection, S3Credentials
from kubetune_api.status import Upload
from kubetune_trainer.runtime.checkpoints import MARKER, latest_complete, mark_complete
from kubetune_trainer.storage.checkpoint_store import CheckpointUploader, restore_from
from kubetune_trainer.storage.object_checks import ObjectStoreError, part_size
from kubetune_trainer.storage.object_digests import plan
from kubetune_trainer.storage.object_fetch import download, fetch_objects
from kubetune_trainer.storage.object_store import (
    Listed,
    TransferProgress,
    client,
    list_objects,
)
from kubetune_trainer.storage.object_upload import upload
from tests.support.kube import eventually
from tests.support.processes import Component
from tests.support.s3 import LocalS3, wrong_bytes

ENV = CredentialEnv("KT_TEST_S3")


class Locate(Protocol):
    """The `located` fixture: a location on the local S3 server, with its keys in ENV."""

    def __call__(self, uri: str, identity: str = ..., field: str = ...) -> Located: ...


@pytest.fixture
def located(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> Locate:
    def make(uri: str, identity: str = "admin", field: str = "model.source") -> Located:
        keys = local_s3.keys(identity)
        monkeypatch.setenv(ENV.access_key_id, keys["accessKeyId"])
        monkeypatch.setenv(ENV.secret_access_key, keys["secretAccessKey"])
        conn = S3Connection(
            endpoint=local_s3.endpoint,
            region="us-east-1",
            pathStyle=True,
            credentials=S3Credentials(name="unused-here"),
        )
        return Located(field, uri, conn, ENV)

    return make


def progress_lines(out: str, verb: str) -> list[tuple[int, int, int]]:
    """(percent, done, total) of each progress line the transfer logged."""
    found = re.findall(rf": {verb} (\d+)% \((\d+) of (\d+) bytes, [\d.]+ MiB/s\)", out)
    return [(int(p), int(d), int(t)) for p, d, t in found]


def test_a_prefix_downloads_once_and_only_what_changed_again(
    local_s3: LocalS3,
    located: Locate,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = local_s3.bucket()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    big = os.urandom(9 * 1024 * 1024)  # above the 8 MiB threshold: a multipart ETag (`…-2`)
    (src / "model.safetensors").write_bytes(big)
    (src / "config.json").write_text('{"a": 1}')
    (src / "sub" / "tokenizer.json").write_text("{}")
    local_s3.put_tree(bucket, "models/tiny", src)
    etags = {k: o["ETag"] for k, o in local_s3.listing(bucket).items()}
    assert etags["models/tiny/model.safetensors"].strip('"').endswith("-2"), etags

    cache = tmp_path / "cache"
    where = located(f"s3://{bucket}/models/tiny")
    path, revision = download(where, cache)
    assert (path / "model.safetensors").read_bytes() == big
    # progress in the log, by quarters, ending at every byte of the three objects
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    lines = progress_lines(capsys.readouterr().out, "downloaded")
    assert lines and lines[-1] == (100, size, size), lines
    assert [p for p, _, _ in lines] == sorted(p for p, _, _ in lines), lines
    assert (path / "sub" / "tokenizer.json").read_text() == "{}"
    assert not list(path.rglob("*.kubetune-part-*"))
    first = {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}

    again, same = download(where, cache)  # nothing changed: nothing downloaded
    assert (again, same) == (path, revision)
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()} == first

    local_s3.client().put_object(Bucket=bucket, Key="models/tiny/config.json", Body=b'{"a": 2}')
    _, changed = download(where, cache)
    assert changed != revision and (path / "config.json").read_text() == '{"a": 2}'
    assert (path / "model.safetensors").stat().st_mtime_ns == first[path / "model.safetensors"]


def test_one_object_and_a_crashed_partial_download(
    local_s3: LocalS3,
    located: Locate,
    tmp_path: Path,
) -> None:
    bucket = local_s3.bucket()
    local_s3.client().put_object(Bucket=bucket, Key="data/chat.jsonl", Body=b'{"x": 1}\n')
    where = located(f"s3://{bucket}/data/chat.jsonl", field="dataset.sources[0].source")
    path, _ = download(where, tmp_path)
    assert path.name == "chat.jsonl" and path.read_bytes() == b'{"x": 1}\n'
    partial = path.with_name("chat.jsonl.kubetune-part-crashed")
    partial.write_bytes(b'{"x"')  # what a killed download leaves
    path.unlink()
    again, _ = download(where, tmp_path)
    assert again.read_bytes() == b'{"x": 1}\n' and not partial.exists()


def test_an_object_replaced_after_the_listing_is_refused(
    local_s3: LocalS3,
    located: Locate,
    tmp_path: Path,
) -> None:
    bucket = local_s3.bucket()
    s3 = local_s3.client()
    s3.put_object(Bucket=bucket, Key="d/a.jsonl", Body=b"old\n")
    where = located(f"s3://{bucket}/d/")
    listed = list_objects(client(where), where)
    s3.put_object(Bucket=bucket, Key="d/a.jsonl", Body=b"new, other size\n")
    with pytest.raises(ObjectStoreError) as err:
        fetch_objects(client(where), where, listed, tmp_path / "f", "d/")
    assert f"s3://{bucket}/d/a.jsonl" in str(err.value)
    assert "PreconditionFailed" in str(err.value), err.value
    assert not (tmp_path / "f" / "a.jsonl").exists()


def test_errors_name_bucket_key_and_code_never_a_key(
    local_s3: LocalS3,
    located: Locate,
    tmp_path: Path,
) -> None:
    bucket = local_s3.bucket()
    local_s3.client().put_object(Bucket=bucket, Key="m/config.json", Body=b"{}")
    with pytest.raises(
        ObjectStoreError, match=rf"model.source: s3://{bucket}/m/nothing: NoSuchKey"
    ):
        download(located(f"s3://{bucket}/m/nothing"), tmp_path)
    with pytest.raises(ObjectStoreError, match="NoSuchBucket"):
        download(located("s3://kt-no-such-bucket/m/"), tmp_path)
    with pytest.raises(ObjectStoreError) as denied:
        download(located(f"s3://{bucket}/m/config.json", identity="denied"), tmp_path)
    message = str(denied.value)
    assert f"s3://{bucket}/m/config.json" in message and "AccessDenied" in message, message
    keys = local_s3.keys("denied")
    assert keys["secretAccessKey"] not in message and keys["accessKeyId"] not in message


def test_upload_writes_every_file_and_the_manifest_last(
    local_s3: LocalS3,
    located: Locate,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = local_s3.bucket()
    out = tmp_path / "output"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "adapter_model.safetensors").write_bytes(os.urandom(9 * 1024 * 1024))
    (out / "report.html").write_text("<html></html>")
    (out / "manifest.json").write_text('{"job": "t"}')
    s3 = local_s3.client()
    s3.put_object(Bucket=bucket, Key="runs/t/manifest.json", Body=b'{"job": "old"}')
    reports: list[Upload] = []
    keys = upload(out, located(f"s3://{bucket}/runs/t", field="output.uri"), report=reports.append)
    assert keys[-1] == "runs/t/manifest.json"
    # progress in the log, by quarters, up to every byte but the manifest's (uploaded last)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"]
    size = sum(p.stat().st_size for p in files)
    lines = progress_lines(capsys.readouterr().out, "uploaded")
    assert len(lines) >= 2 and lines[-1] == (100, size, size), lines
    # and to the status as the log has it, then once more, done, after the manifest
    assert [(r.percent, r.bytes) for r in reports[:-1]] == [(min(p, 99), d) for p, d, _ in lines]
    assert not any(r.done for r in reports[:-1]), reports
    assert reports[-1].done and (reports[-1].percent, reports[-1].bytes) == (100, size)
    assert {r.uri for r in reports} == {f"s3://{bucket}/runs/t/"} and reports[-1].totalBytes == size
    listing = local_s3.listing(bucket, "runs/t/")
    assert set(listing) == {
        "runs/t/adapter/adapter_model.safetensors",
        "runs/t/report.html",
        "runs/t/manifest.json",
    }
    body = s3.get_object(Bucket=bucket, Key="runs/t/manifest.json")["Body"].read()
    assert body == b'{"job": "t"}'
    last = max(o["LastModified"] for k, o in listing.items() if not k.endswith("manifest.json"))
    assert listing["runs/t/manifest.json"]["LastModified"] >= last
    with pytest.raises(ObjectStoreError, match="AccessDenied"):
        upload(out, located(f"s3://{bucket}/runs/u", identity="denied", field="output.uri"))


def fake_checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(4096 + step))
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if complete:
        mark_complete(folder, step=step)
    return folder


def test_checkpoints_upload_marker_last_rotate_and_restore(
    local_s3: LocalS3, located: Locate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uploader against the real server: the marker is the last object written, the bucket
    keeps `keep` complete checkpoints and drops leftovers without a marker; restoring takes the
    bucket's newest only when it is newer than the volume's, byte for byte, and a tampered
    object is refused, never renamed into place."""
    bucket = local_s3.bucket()
    where = located(f"s3://{bucket}/run/checkpoints/", field="output.uploadCheckpoints")
    s3 = client(where)
    s3.put_object(Bucket=bucket, Key="run/checkpoints/checkpoint-2/adapter_model.safetensors")
    volume = tmp_path / "volume"
    uploader = CheckpointUploader(where, keep=2)
    for step in (4, 6, 8):  # quicker than uploads: a waiting one may be replaced by a newer
        uploader.submit(fake_checkpoint(volume, step))
    uploader.finish()
    listing = local_s3.listing(bucket, "run/checkpoints/")
    assert {k.split("/")[2] for k in listing} >= {"checkpoint-8"}
    complete = sorted(k.split("/")[2] for k in listing if k.endswith(MARKER))
    assert complete[-1] == "checkpoint-8" and len(complete) <= 2, sorted(listing)
    assert not [k for k in listing if "checkpoint-2/" in k], "the leftover without a marker"
    folder = [v for k, v in listing.items() if "checkpoint-8/" in k]
    marker = listing[f"run/checkpoints/checkpoint-8/{MARKER}"]["LastModified"]
    assert marker >= max(o["LastModified"] for o in folder)

    fresh = tmp_path / "fresh"
    fake_checkpoint(fresh, 6)
    restored = restore_from(where, fresh)
    assert restored == fresh / "checkpoint-8" and latest_complete(fresh) == restored
    for name in ("adapter_model.safetensors", "trainer_state.json", MARKER):
        assert (restored / name).read_bytes() == (volume / "checkpoint-8" / name).read_bytes()
    assert restore_from(where, fresh) is None, "the volume's is as new"

    s3.put_object(  # a checkpoint-10 whose weights are cut short after the listing
        Bucket=bucket, Key="run/checkpoints/checkpoint-10/adapter_model.safetensors", Body=b"x"
    )
    s3.put_object(Bucket=bucket, Key=f"run/checkpoints/checkpoint-10/{MARKER}", Body=b"{}")
    tampered = tmp_path / "tampered"
    fetch = fetch_objects

    def listed_one_byte_longer(s3_: Any, where_: Located, listed: list[Listed], *rest: Any) -> None:
        """Stands for an object cut short: the listing says one byte more than it holds."""
        longer = [Listed(o.key, o.size + 1, o.etag) for o in listed]
        fetch(s3_, where_, longer, *rest)

    monkeypatch.setattr(store, "fetch_objects", listed_one_byte_longer)
    with pytest.raises(ObjectStoreError, match="BadDigest"):
        restore_from(where, tampered)
    assert latest_complete(tampered) is None and not (tampered / "checkpoint-10").exists()


def test_transfers_survive_the_server_stopping_and_starting_again(
    local_s3: LocalS3, located: Locate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 server (SeaweedFS) is killed while an upload has parts on it and a download has
    bytes in its part file, and started again 3 s later: both complete, byte for byte, the
    upload's manifest last. Both would finish in about 2 s, quicker than a poll can catch them
    in the middle, so every transfer thread that counts bytes past half of its total waits
    there (in `TransferProgress.add`, its request open) until the server is down."""
    bucket = local_s3.bucket()
    out = tmp_path / "output"
    (out / "merged").mkdir(parents=True)
    shard = out / "merged" / "model.safetensors"
    data = os.urandom(128 << 20)
    shard.write_bytes(data)
    (out / "merged" / "config.json").write_text('{"model_type": "llama"}')
    (out / "manifest.json").write_text('{"job": "outage"}')
    s3 = local_s3.client()
    s3.upload_file(str(shard), bucket, "models/m/model.safetensors")
    up = located(f"s3://{bucket}/runs/outage/", field="output.uri")
    down = located(f"s3://{bucket}/models/m/")
    cache = tmp_path / "cache"
    server = Component(local_s3.credentials_file.parent / "weed.pid")

    def under_way() -> bool:
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        parts = any(
            s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts")
            for u in uploads
        )
        return parts and any(p.stat().st_size for p in cache.rglob("*.kubetune-part-*"))

    server_down = threading.Event()
    count = TransferProgress.add

    def count_then_hold(progress: TransferProgress, n: int) -> None:
        count(progress, n)
        if n > 0 and 2 * progress.done >= progress.total:
            server_down.wait(timeout=120)

    monkeypatch.setattr(TransferProgress, "add", count_then_hold)
    with ThreadPoolExecutor(2) as pool:
        sent, fetched = pool.submit(upload, out, up), pool.submit(download, down, cache)
        try:
            eventually(under_way, timeout=60, interval=0.05, what="both transfers under way")
            server.stop(kill=True)  # every held request cut mid-stream
            stopped = time.monotonic()
            server_down.set()
            time.sleep(3)  # the outage itself
        finally:
            server_down.set()
            if not server.alive():
                server.start()
        sent.result(timeout=300)
        path, _ = fetched.result(timeout=300)
    print(
        f"\nfault: S3 server down 3 s; both transfers done {time.monotonic() - stopped:.0f} s after"
    )
    listing = local_s3.listing(bucket, "runs/outage/")
    assert listing["runs/outage/merged/model.safetensors"]["Size"] == shard.stat().st_size
    last = max(o["LastModified"] for k, o in listing.items() if not k.endswith("manifest.json"))
    assert listing["runs/outage/manifest.json"]["LastModified"] >= last
    body = s3.get_object(Bucket=bucket, Key="runs/outage/merged/model.safetensors")["Body"]
    expected = hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(body.read()).hexdigest() == expected
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest() == expected


def test_etags_and_checksums_computed_as_the_server_computes_them(
    local_s3: LocalS3,
    located: Locate,
    tmp_path: Path,
) -> None:
    """A file boto3 uploads in 8 MiB parts: the server's `…-3` ETag, composite CRC32 (boto3's
    default) and SHA-256 (asked for) are what a download computes from the bytes, part by part,
    with the first part's size (HEAD partNumber=1); one byte changed, none is. So for a
    single-part object's MD5 and full-object CRC32. `plan` prefers the checksum."""
    bucket = local_s3.bucket()
    s3 = local_s3.client()
    data = tmp_path / "shard.bin"
    data.write_bytes(os.urandom(20 * 1024 * 1024 + 5))
    s3.upload_file(str(data), bucket, "m/shard.bin")
    s3.upload_file(str(data), bucket, "m/sha.bin", ExtraArgs={"ChecksumAlgorithm": "SHA256"})
    plain = local_s3.client(request_checksum_calculation="when_required")
    plain.upload_file(str(data), bucket, "m/plain.bin")
    heads = {
        key: s3.head_object(Bucket=bucket, Key=f"m/{key}", ChecksumMode="ENABLED")
        for key in ("shard.bin", "sha.bin", "plain.bin")
    }
    assert (etag := heads["shard.bin"]["ETag"]).strip('"').endswith("-3"), etag
    crc32, sha256 = heads["shard.bin"]["ChecksumCRC32"], heads["sha.bin"]["ChecksumSHA256"]
    assert crc32.endswith("-3") and sha256.endswith("-3"), (crc32, sha256)
    assert not any(k.startswith("ChecksumCRC") for k in heads["plain.bin"]), heads["plain.bin"]
    part = part_size(s3, located(f"s3://{bucket}/m/"), bucket, "m/shard.bin")
    assert part == 8 * 1024 * 1024
    body = data.read_bytes()
    changed = body[: 12 << 20] + bytes([body[12 << 20] ^ 0xFF]) + body[(12 << 20) + 1 :]
    for key, how in (("shard.bin", "CRC32"), ("sha.bin", "SHA256"), ("plain.bin", "ETag")):
        check = plan(heads[key]["ETag"], heads[key], lambda: part)
        assert check.how.startswith(how) and check.part == part, (key, check)
        assert wrong_bytes(check, body) == "", key
        assert wrong_bytes(check, changed), key
    assert plan(etag, heads["shard.bin"], lambda: None).how.startswith("size only")
    # parts of 5 MiB + 123 bytes: the download's 1 MiB reads cross every part's end, where
    # each part's digest must stop and the next begin (one GET carries all four)
    odd = 5 * 1024 * 1024 + 123
    s3.upload_file(
        str(data), bucket, "odd/shard.bin", Config=TransferConfig(multipart_chunksize=odd)
    )
    head = s3.head_object(Bucket=bucket, Key="odd/shard.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"].endswith("-4") and head["ETag"].strip('"').endswith("-4")
    where = located(f"s3://{bucket}/odd/shard.bin")
    assert (
        plan(head["ETag"], head, lambda: part_size(s3, where, bucket, "odd/shard.bin")).part == odd
    )
    fetched, _ = download(where, tmp_path / "cache")
    assert fetched.read_bytes() == body
    s3.put_object(Bucket=bucket, Key="m/small", Body=b"hello")
    head = s3.head_object(Bucket=bucket, Key="m/small", ChecksumMode="ENABLED")
    for found, how in ((head, "CRC32"), ({"ETag": head["ETag"]}, "ETag (MD5)")):
        check = plan(head["ETag"], found, lambda: None)
        assert check.how == how and check.part is None, check
        assert wrong_bytes(check, b"hello") == "" and wrong_bytes(check, b"hellO"), how
