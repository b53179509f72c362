"""The Dockerfile: hadolint-clean, both targets present, both run as non-root."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.factories import REPO

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
    assert "torch" not in final["operator"] and ".[operator]" in DOCKERFILE.read_text()
