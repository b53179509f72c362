"""The local control plane's S3 server: SeaweedFS (`weed server` with its filer and S3 gateway),
built from its Go module (build-binaries.sh seaweedfs), bound to 127.0.0.1.

Two identities, their keys generated at the first start and kept in `<state>/s3/credentials.json`
(never printed): `admin` may do everything; `denied` has no bucket (its requests get AccessDenied,
for the fault tests). `up` prints the endpoint and the path of that file as exports.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pids

S3_PORT = 18333
PORTS = {"master": 19333, "volume": 18080, "filer": 18888}
ENDPOINT = f"http://127.0.0.1:{S3_PORT}"


def paths(state: Path) -> dict[str, Path]:
    root = state / "s3"
    return {
        "root": root,
        "data": root / "data",
        "config": root / "s3.json",
        "credentials": root / "credentials.json",
        "pid": root / "weed.pid",
        "log": root / "weed.log",
    }


def credentials(state: Path) -> dict[str, dict[str, str]]:
    """The identities' keys, generated once per cluster state."""
    file = paths(state)["credentials"]
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        keys = {
            name: {
                "accessKeyId": "KT" + secrets.token_hex(9).upper(),
                "secretAccessKey": secrets.token_urlsafe(30),
            }
            for name in ("admin", "denied")
        }
        file.write_text(json.dumps(keys, indent=2))
        file.chmod(0o600)
    loaded: dict[str, dict[str, str]] = json.loads(file.read_text())
    return loaded


def s3_config(keys: dict[str, dict[str, str]]) -> dict[str, object]:
    """SeaweedFS's static identities (its docker/compose/s3.json format); no anonymous access."""

    def identity(name: str, actions: list[str]) -> dict[str, object]:
        key = keys[name]
        creds = [{"accessKey": key["accessKeyId"], "secretKey": key["secretAccessKey"]}]
        return {"name": name, "credentials": creds, "actions": actions}

    return {
        "identities": [
            identity("admin", ["Admin", "Read", "List", "Tagging", "Write"]),
            identity("denied", ["Read:kubetune-no-such-bucket"]),
        ]
    }


COMMAND = "weed"


def start(weed_dir: Path, state: Path, log: Callable[[str], None]) -> None:
    p = paths(state)
    if pids.alive(p["pid"], COMMAND):
        return
    p["data"].mkdir(parents=True, exist_ok=True)
    p["config"].write_text(json.dumps(s3_config(credentials(state)), indent=2))
    p["config"].chmod(0o600)
    cmd = [
        str(weed_dir / "weed"),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={p['data']}",
        f"-master.port={PORTS['master']}",
        "-master.volumeSizeLimitMB=64",  # small, unpreallocated volume files
        "-master.telemetry=false",
        f"-volume.port={PORTS['volume']}",
        "-volume.max=0",  # as many as the disk holds: each bucket (collection) grows 7
        "-filer",
        f"-filer.port={PORTS['filer']}",
        "-s3",
        f"-s3.port={S3_PORT}",
        f"-s3.config={p['config']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    log(f"starting the S3 server (SeaweedFS) on {ENDPOINT}")
    proc = pids.start_detached(cmd, p["log"], p["pid"])
    wait_ready(state, proc)


def client(state: Path, identity: str = "admin") -> Any:  # boto3 ships no types
    import boto3
    from botocore.config import Config

    key = credentials(state)[identity]
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key["accessKeyId"],
        aws_secret_access_key=key["secretAccessKey"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def wait_ready(state: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Ready when a signed request round-trips: a bucket is created, listed and removed."""
    s3 = client(state)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the S3 server exited ({proc.returncode}); see its log")
        try:
            if "kubetune-ready" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
                s3.create_bucket(Bucket="kubetune-ready")
            s3.put_object(Bucket="kubetune-ready", Key="ready", Body=b"1")
            s3.delete_object(Bucket="kubetune-ready", Key="ready")
            return
        except Exception as err:  # not up yet: connection refused, filer not ready
            last = err
            time.sleep(0.5)
    raise RuntimeError(f"the S3 server did not become ready in {timeout:.0f}s: {last}")


def stop(state: Path) -> None:
    p = paths(state)
    pid = pids.alive(p["pid"], COMMAND)
    if pid:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pids.alive(p["pid"], COMMAND) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pids.alive(p["pid"], COMMAND):
            os.killpg(pid, signal.SIGKILL)
    p["pid"].unlink(missing_ok=True)
