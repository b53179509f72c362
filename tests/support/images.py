"""Building the Dockerfile's targets (hack/images.py, cached by a content key) and running them
the way the pods run them, for the image tests (tests/images) and docs/images.md."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from tests.support.factories import REPO

# A cold trainer build downloads the locked training stack (GBs): far beyond the default.
BUILD_TIMEOUT_S = 3600


def build(target: str) -> str:
    given = os.environ.get(f"KUBETUNE_{target.upper()}_IMAGE")
    if given:
        return given
    result = subprocess.run(
        [sys.executable, str(REPO / "hack/images.py"), target],
        stdout=subprocess.PIPE,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert result.returncode == 0, f"hack/images.py {target} failed (its output is above)"
    return result.stdout.strip()


def docker_run(
    image: str, args: Sequence[str], command: Sequence[str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm` as uid 1000 with the pods' container security context (no
    capabilities, no privilege escalation); output captured."""
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--user",
            "1000:1000",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            *args,
            image,
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
