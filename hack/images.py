"""Build the Dockerfile's targets, cached by a content key:

    python3 hack/images.py operator|trainer     -> prints the image tag (kubetune/<target>:<key>)

The key hashes everything the build reads (the files the Dockerfile copies, the extra CA
certificates, the base images' ids, the target), so a rerun without changes finds the tag and
takes a second; a change rebuilds through Docker's layer cache (the locked dependencies are a
layer of their own). Older tags of the same target are removed after a build, so the engine
keeps one trainer image (GBs) rather than one per edit.

The build context is a tar stream made here, not the checkout: exactly the inputs below, plus
the host's CA bundle as hack/build-ca/host-bundle.crt when it exists (a TLS-inspecting proxy's
CA lives there on this project's CI machine). Only the Dockerfile's build stages read that
folder; the final stages never copy it (docs/images.md).

Bases: the Dockerfile's registry defaults when they can be pulled, else images made from
Debian packages by hack/base-images. KUBETUNE_IMAGE_BASES=registry|local forces one.
The engine: DOCKER_HOST as set, else whatever hack/docker finds or starts.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the Dockerfile copies (COPY lines), and the Dockerfile itself.
INPUTS = (
    "Dockerfile",
    "pyproject.toml",
    "uv.lock",
    "hack/bootstrap-uv.py",
    "hack/build-env.sh",
    "hack/build-ca",
    "hack/llama-cpp.sh",
    "operator",
    "trainer",
    "contract",
)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REGISTRY_BASES = {
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    "TRAINER_BASE_IMAGE": "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04",
}
TARGETS = ("operator", "trainer")


def say(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def docker(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def ensure_engine() -> None:
    """DOCKER_HOST for this process: as set when it answers, else from hack/docker."""
    out = subprocess.run([str(ROOT / "hack/docker")], capture_output=True, text=True, check=False)
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise SystemExit(out.returncode)
    os.environ["DOCKER_HOST"] = out.stdout.strip().removeprefix("export DOCKER_HOST=")


def image_id(name: str) -> str | None:
    out = docker("image", "inspect", "-f", "{{.Id}}", name, capture_output=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def bases() -> dict[str, str]:
    """The base ARGs: the registry defaults when pullable, else the local Debian-made ones."""
    mode = os.environ.get("KUBETUNE_IMAGE_BASES", "auto")
    if mode != "local":
        missing = [b for b in REGISTRY_BASES.values() if image_id(b) is None]
        pulled = all(
            docker("pull", "-q", b, capture_output=True, check=False, timeout=600).returncode == 0
            for b in missing
        )
        if pulled:
            return dict(REGISTRY_BASES)
        if mode == "registry":
            raise SystemExit(
                "[images] cannot pull the registry bases (KUBETUNE_IMAGE_BASES=registry)"
            )
        say("registry bases cannot be pulled: using bases made from Debian packages")
    out = subprocess.run(
        [str(ROOT / "hack/base-images")], capture_output=True, text=True, check=False
    )
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise SystemExit(out.returncode)
    return dict(line.split("=", 1) for line in out.stdout.split())


def input_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *INPUTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(f for f in listed if "__pycache__" not in f and (ROOT / f).is_file())


def context_tar() -> bytes:
    """A reproducible tar of the inputs (fixed owners and times), the build context."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))

        for name in input_files():
            path = ROOT / name
            add(name, path.read_bytes(), 0o755 if os.access(path, os.X_OK) else 0o644)
        if HOST_CA_BUNDLE.exists():
            add("hack/build-ca/host-bundle.crt", HOST_CA_BUNDLE.read_bytes(), 0o644)
    return buf.getvalue()


def build(target: str) -> str:
    ensure_engine()
    args = bases()
    context = context_tar()
    key = hashlib.sha256(context)
    key.update(target.encode())
    for name, base in sorted(args.items()):
        key.update(f"{name}={base}@{image_id(base)}".encode())
    tag = f"kubetune/{target}:{key.hexdigest()[:12]}"
    if image_id(tag):
        say(f"{tag} is current")
        return tag
    command = ["build", "--target", target, "-t", tag, "-f", "Dockerfile"]
    for name, base in args.items():
        command += ["--build-arg", f"{name}={base}"]
    env = dict(os.environ)
    if docker("buildx", "version", capture_output=True, check=False).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"  # no buildx plugin: the classic builder reads the same file
    say(f"building {tag} (bases {', '.join(args.values())})")
    # The build's log goes to stderr: stdout carries the tag alone.
    result = subprocess.run(
        ["docker", *command, "-"], input=context, env=env, stdout=sys.stderr, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"[images] docker build --target {target} failed")
    listed = docker(
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        f"kubetune/{target}",
        capture_output=True,
        check=False,
    ).stdout.split()
    stale = [t for t in listed if t != tag and not t.endswith(":<none>")]
    for old in stale:  # one at a time: an image a container still uses stays, said so
        if docker("image", "rm", old, capture_output=True, check=False).returncode != 0:
            say(f"could not remove the older {old} (in use?): docker image rm {old}")
    return tag


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: hack/images.py {'|'.join(TARGETS)}")
    print(build(sys.argv[1]))


if __name__ == "__main__":
    main()
