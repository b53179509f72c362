"""Fetch a pinned uv from the Python package index with nothing but Python's standard library.

    python3 hack/bootstrap-uv.py VERSION DEST_DIR      -> DEST_DIR/uv

A fresh machine may have python3 without pip or venv (Debian's python3 alone), so this reads
the index's simple page (PEP 503), downloads the wheel for this platform, checks it against the
sha256 pinned below (one line per platform; refresh them with the index's own `#sha256=`
fragments when VERSION changes) and unpacks the `uv` binary from the wheel's scripts.
The index is UV_DEFAULT_INDEX, UV_INDEX_URL or PIP_INDEX_URL when set, else PyPI.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

# (system, machine) -> the wheel's platform tag and its sha256, for uv 0.13.9.
WHEELS = {
    ("Linux", "x86_64"): (
        "manylinux_2_17_x86_64.manylinux2014_x86_64",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    ("Linux", "aarch64"): (
        "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
    ("Darwin", "x86_64"): (
        "macosx_10_12_x86_64",
        "c16ed11e013557536b3e60065f1b912f6407bd6518e041b961e23ef9e6b4fbf5",
    ),
    ("Darwin", "arm64"): (
        "macosx_11_0_arm64",
        "66c512266d633bef48384a1f53003f41f2a8e7b36fe6e7fbfd3e0fd52d96fa63",
    ),
}
PINNED_VERSION = "0.13.9"


def fail(message: str) -> None:
    print(f"[uv] {message}", file=sys.stderr)
    sys.exit(1)


def main(version: str, dest: Path) -> None:
    if version != PINNED_VERSION:
        fail(f"hack/bootstrap-uv.py pins the hashes of uv {PINNED_VERSION}, not {version}")
    key = (platform.system(), platform.machine())
    if key not in WHEELS:
        fail(f"no pinned uv wheel for {key[0]} {key[1]}: install uv {version} yourself")
    tag, sha256 = WHEELS[key]
    name = f"uv-{version}-py3-none-{tag}.whl"
    index = (
        next(
            (
                os.environ[v]
                for v in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
                if os.environ.get(v)
            ),
            "https://pypi.org/simple",
        ).rstrip("/")
        + "/uv/"
    )
    try:
        page = urllib.request.urlopen(index, timeout=60).read().decode()
        hrefs = re.findall(r'href="([^"]+)"', page)
        href = next(h for h in hrefs if urllib.parse.unquote(h).split("#")[0].endswith(name))
        url = urllib.parse.urljoin(index, href.split("#")[0])
        wheel = urllib.request.urlopen(url, timeout=300).read()
    except StopIteration:
        fail(f"{index} does not list {name}")
    except OSError as err:
        fail(f"cannot fetch uv from {index}: {err}")
    digest = hashlib.sha256(wheel).hexdigest()
    if digest != sha256:
        fail(f"{name}: sha256 {digest} is not the pinned {sha256}")
    binary = zipfile.ZipFile(io.BytesIO(wheel)).read(f"uv-{version}.data/scripts/uv")
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / "uv.tmp"
    tmp.write_bytes(binary)
    tmp.chmod(0o755)
    tmp.replace(dest / "uv")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
