"""The Dockerfile: hadolint-clean, both targets present, both run as non-root, both installed
from uv.lock, and hack/images.py's content key covers everything it copies. Building and
running the images: tests/images/."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.factories import REPO

DOCKERFILE = REPO / "Dockerfile"


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_targets_run_as_non_root() -> None:
    stages = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1:]
    final = {s.split()[2]: s for s in stages if " AS " in s.splitlines()[0]}
    assert {"operator", "trainer"} <= set(final)
    for name in ("operator", "trainer"):
        assert "USER 1000:1000" in final[name], name
    assert "torch" not in final["operator"]


def test_images_install_the_locked_versions() -> None:
    text = DOCKERFILE.read_text()
    assert "uv export --frozen" in text
    assert text.count("uv pip install --require-hashes --no-deps -r") == 2  # operator, trainer


def test_the_content_key_covers_every_copied_path() -> None:
    """A COPY source missing from hack/images.py's INPUTS would let a stale image pass."""
    spec = importlib.util.spec_from_file_location("images", REPO / "hack" / "images.py")
    assert spec and spec.loader
    images = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(images)
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert any(
                    source.rstrip("/") == i or source.startswith(f"{i}/") for i in images.INPUTS
                ), source


def test_the_build_ca_never_reaches_a_final_stage() -> None:
    stages = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1:]
    for stage in stages:
        name = stage.split()[2]
        if name in ("operator", "trainer"):
            assert "build-ca" not in stage and "build-env" not in stage, name
