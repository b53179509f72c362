"""Object-storage throughput and memory: kubetune's s3:// transfers (`object_upload.upload`,
boto3's s3transfer, and `object_fetch.download`, ranged GETs digested as they stream, as the
export and `prepare` run them) against the server-native class of client (hack/s3-native:
minio-go, the library MinIO's `mc` is built on, with its defaults), both against the local
control plane's S3 server (SeaweedFS), in the same run. Targets: ≥ 0.8× the native client
both ways, and kubetune's peak RSS ≤ 256 MiB.

The set is model-shaped: safetensors shards of random bytes (about 512 MiB each, as many as the
size asks; each with a real safetensors header) and their index, config.json,
generation_config.json, tokenizer_config.json and a 2 MiB tokenizer.json, written to a
temporary folder and removed at the end. Each side uploads it to a prefix of its own; then each
side downloads kubetune's upload, and every downloaded file must have the source's SHA-256 (so
the native client also checks what kubetune wrote). The sides take turns (each downloads first
every other run), each transfer after a `sync`; with `--repeat`, each rate is the best run's and
each RSS the highest.

Every transfer runs in a child process that does only that transfer, and reports its peak RSS:
the kernel's high-water mark of that process (VmHWM in /proc/self/status; not wait4's
ru_maxrss, which also counts the parent's pages shared at the fork), so the bench's own memory
does not count. kubetune's RSS at the start (Python, boto3 and kubetune imported) is given too,
and each side's CPU seconds (wait4's).

    python bench/object_storage.py [--size-mib 2048] [--repeat 2] [--json FILE]

The server is the one that KUBETUNE_LOCAL_S3_ENDPOINT and KUBETUNE_LOCAL_S3_CREDENTIALS name
(the exports of `hack/local-cluster up`), else the bench brings the local cluster up itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import local_s3

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
SHARD_MIB = 512
CHILD_ENV = "KT_BENCH_S3"  # the keys reach kubetune's child as KT_BENCH_S3_* variables
RSS_TARGET_MIB = 256
RATIO_TARGET = 0.8


# --- the set -----------------------------------------------------------------------------


def _safetensors_header(name: str, size: int) -> bytes:
    """A safetensors header for one BF16 tensor filling a file of `size` bytes in all."""
    data = size - 8
    for _ in range(3):  # the header's own length changes the data's by a few digits
        meta = {
            "__metadata__": {"format": "pt"},
            name: {"dtype": "BF16", "shape": [data // 2], "data_offsets": [0, data // 2 * 2]},
        }
        header = json.dumps(meta, separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)
        data = size - 8 - len(header)
    assert data % 2 == 0 and data > 0, (size, data)
    return len(header).to_bytes(8, "little") + header


def _small_files(shards: list[str], total: int) -> dict[str, bytes]:
    words = [f"tok{i}" for i in range(120_000)]
    vocab = {w: i for i, w in enumerate(words)}
    tokenizer = {"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": []}}
    layers = {f"model.layers.{i}.weight": shard for i, shard in enumerate(shards)}
    return {
        "config.json": json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_size": 4096,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "vocab_size": len(words),
                "torch_dtype": "bfloat16",
            },
            indent=2,
        ).encode(),
        "generation_config.json": b'{"bos_token_id": 1, "eos_token_id": 2, "do_sample": true}',
        "tokenizer_config.json": json.dumps(
            {"model_max_length": 8192, "tokenizer_class": "PreTrainedTokenizerFast"}
        ).encode(),
        "tokenizer.json": json.dumps(tokenizer).encode(),  # about 2 MiB
        "model.safetensors.index.json": json.dumps(
            {"metadata": {"total_size": total}, "weight_map": layers}, indent=2
        ).encode(),
    }


def write_set(folder: Path, size_mib: int) -> dict[str, str]:
    """Write the model-shaped set of `size_mib` MiB in all; return each file's SHA-256."""
    folder.mkdir(parents=True)
    count = max(1, round(size_mib / SHARD_MIB))
    shards = [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
    small = _small_files(shards, size_mib * MIB)
    room = size_mib * MIB - sum(map(len, small.values()))
    if room < count * MIB:
        raise SystemExit(f"--size-mib {size_mib}: too small for the set's files; use ≥ 16")
    sizes = [room // count // 2 * 2] * count  # BF16: an even number of bytes
    for i, (shard, size) in enumerate(zip(shards, sizes, strict=True)):
        with (folder / shard).open("wb") as f:
            header = _safetensors_header(f"model.layers.{i}.weight", size)
            f.write(header)
            left = size - len(header)
            while left:
                chunk = os.urandom(min(left, 8 * MIB))
                f.write(chunk)
                left -= len(chunk)
    for name, body in small.items():
        (folder / name).write_bytes(body)
    return digests(folder)


def digests(folder: Path) -> dict[str, str]:
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as f:
            found[path.relative_to(folder).as_posix()] = hashlib.file_digest(
                f, "sha256"
            ).hexdigest()
    return found


# --- the transfers, each in a child process ----------------------------------------------


def _rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(spec: dict[str, str]) -> None:
    """kubetune's side of one transfer: only that, then one JSON line (the last of stdout)."""
    import boto3.s3.transfer  # noqa: F401  (imported lazily by kubetune: at the start here)

    from kubetune_api.s3_spec import CredentialEnv, Located, S3Connection, S3Credentials
    from kubetune_trainer.storage.object_fetch import download
    from kubetune_trainer.storage.object_upload import upload

    conn = S3Connection(
        endpoint=spec["endpoint"],
        region="us-east-1",
        pathStyle=True,
        credentials=S3Credentials(name="bench"),
    )
    uri = f"s3://{spec['bucket']}/{spec['prefix']}"
    started_rss = _rss_mib()
    started = time.perf_counter()
    if spec["direction"] == "upload":
        upload(Path(spec["dir"]), Located("output.uri", uri, conn, CredentialEnv(CHILD_ENV)))
        path = Path(spec["dir"])
    else:
        where = Located("model.source", uri, conn, CredentialEnv(CHILD_ENV))
        path, _ = download(where, Path(spec["dir"]))
    seconds = time.perf_counter() - started
    peak = _rss_mib("VmHWM")
    print(
        json.dumps(
            {"seconds": seconds, "startRssMiB": started_rss, "peakRssMiB": peak, "path": str(path)}
        )
    )


def _run(cmd: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run one transfer; its JSON result and its CPU seconds (wait4's, user and system). The
    dirty pages of the transfers before it are written out first (`sync`), so that no transfer
    pays for writing back the one before."""
    os.sync()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode(errors="replace")
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}):\n{out[-3000:]}")
    result = json.loads(out.splitlines()[-1])
    return result, usage.ru_utime + usage.ru_stime


class Sides:
    def __init__(self, endpoint: str, keys: dict[str, str], native: Path, bucket: str) -> None:
        self.endpoint, self.native, self.bucket = endpoint, native, bucket
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", CHILD_ENV))}
        self.ours_env = {
            **base,
            f"{CHILD_ENV}_ACCESS_KEY_ID": keys["accessKeyId"],
            f"{CHILD_ENV}_SECRET_ACCESS_KEY": keys["secretAccessKey"],
        }
        self.native_env = {
            **base,
            "AWS_ACCESS_KEY_ID": keys["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["secretAccessKey"],
        }

    def kubetune(self, direction: str, prefix: str, folder: Path) -> dict[str, Any]:
        spec = {"direction": direction, "endpoint": self.endpoint, "bucket": self.bucket}
        spec |= {"prefix": prefix, "dir": str(folder)}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
        result, cpu = _run(cmd, self.ours_env)
        return {**result, "cpuSeconds": cpu}

    def native_client(self, direction: str, prefix: str, folder: Path) -> dict[str, Any]:
        verb = "put" if direction == "upload" else "get"
        cmd = [str(self.native), verb, "-endpoint", self.endpoint, "-bucket", self.bucket]
        cmd += ["-prefix", prefix, "-dir", str(folder)]
        result, cpu = _run(cmd, self.native_env)
        peak = result.pop("peakRssKiB") / 1024
        return {**result, "path": str(folder), "peakRssMiB": peak, "cpuSeconds": cpu}


def native_binary() -> Path:
    done = subprocess.run(
        [str(REPO / "hack/cluster/build-binaries.sh"), "s3-native"],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("S3_NATIVE_BIN="))
    return Path(line.split("=", 1)[1]) / "s3-native"


def _empty_bucket(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


def _client(endpoint: str, keys: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys["accessKeyId"],
        aws_secret_access_key=keys["secretAccessKey"],
        config=Config(s3={"addressing_style": "path"}),
    )


def measure(size_mib: int, repeat: int, work: Path) -> dict[str, Any]:
    endpoint, credentials = local_s3()
    keys = json.loads(credentials.read_text())["admin"]
    s3 = _client(endpoint, keys)
    bucket = f"kt-bench-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    sides = Sides(endpoint, keys, native_binary(), bucket)
    source = work / "set"
    print(f"writing a {size_mib} MiB model-shaped set under {work}", file=sys.stderr)
    expected = write_set(source, size_mib)
    total = sum(p.stat().st_size for p in source.iterdir())
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        d: {"kubetune": [], "native": []} for d in ("upload", "download")
    }
    ours, theirs = ("kubetune", sides.kubetune), ("native", sides.native_client)
    turns = ((ours, theirs), (theirs, ours))  # downloads: each side first every other run
    try:
        for r in range(repeat):
            for side, run in (ours, theirs):
                print(f"run {r + 1}/{repeat}: {side} upload", file=sys.stderr)
                runs["upload"][side].append(run("upload", f"{side}-{r}/", source))
            for side, run in turns[r % 2]:
                print(f"run {r + 1}/{repeat}: {side} download", file=sys.stderr)
                into = work / f"{side}-download-{r}"
                result = run("download", "kubetune-0/", into)
                got = digests(Path(result["path"]))
                got.pop(".kubetune-s3.json", None)  # kubetune's cache record, not an object
                result["identical"] = got == expected
                runs["download"][side].append(result)
                shutil.rmtree(into)
    finally:
        _empty_bucket(s3, bucket)
    report: dict[str, Any] = {
        "sizeMiB": round(total / MIB, 1),
        "files": len(expected),
        "shards": sum(name.endswith(".safetensors") for name in expected),
        "repeat": repeat,
        "endpoint": endpoint,
    }
    for direction, sides_runs in runs.items():
        row: dict[str, Any] = {}
        for side, results in sides_runs.items():
            best = min(r["seconds"] for r in results)
            row[side] = {
                "mibPerSecond": round(total / MIB / best, 1),
                "seconds": [round(r["seconds"], 2) for r in results],
                "peakRssMiB": round(max(r["peakRssMiB"] for r in results), 1),
                "cpuSeconds": [round(r["cpuSeconds"], 2) for r in results],
            }
            if side == "kubetune":
                row[side]["startRssMiB"] = round(max(r["startRssMiB"] for r in results), 1)
            if direction == "download":
                row[side]["identical"] = all(r["identical"] for r in results)
        row["ratio"] = round(row["kubetune"]["mibPerSecond"] / row["native"]["mibPerSecond"], 3)
        report[direction] = row
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048, help="the set's size (≥ 16)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per side; the best counts")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one transfer, in its own process
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    with tempfile.TemporaryDirectory(prefix="kubetune-s3-bench-") as tmp:
        report = measure(args.size_mib, args.repeat, Path(tmp))
    print(
        f"object storage: {report['files']} files ({report['shards']} safetensors shards), "
        f"{report['sizeMiB']} MiB, SeaweedFS at {report['endpoint']}, best of {args.repeat}"
    )
    print(
        f"{'direction':9} {'kubetune':>13} {'native':>13} {'ratio':>6}  "
        f"{'kubetune RSS peak (start)':>26} {'native RSS':>11}"
    )
    for direction in ("upload", "download"):
        row = report[direction]
        ours, native = row["kubetune"], row["native"]
        print(
            f"{direction:9} {ours['mibPerSecond']:>8.1f} MiB/s {native['mibPerSecond']:>7.1f} MiB/s"
            f" {row['ratio']:>5.2f}x  {ours['peakRssMiB']:>12.0f} MiB"
            f" ({ours['startRssMiB']:.0f} MiB) {native['peakRssMiB']:>7.0f} MiB"
        )
    print(f"targets: ratio ≥ {RATIO_TARGET}x both ways, kubetune's peak RSS ≤ {RSS_TARGET_MIB} MiB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    wrong = [s for s in ("kubetune", "native") if not report["download"][s]["identical"]]
    if wrong:
        print(f"downloaded bytes differ from the source's: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
