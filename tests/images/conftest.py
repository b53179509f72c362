"""The images as users get them: built from the repository's Dockerfile by hack/images.py
(cached by a content key), run with `docker run` the way the pods run them.

An engine comes from hack/docker (the one that answers, else a dockerd of our own, started as
root). Without one these tests skip, saying why; set KUBETUNE_SKIP_IMAGES=1 to skip them
locally (never in CI). KUBETUNE_OPERATOR_IMAGE / KUBETUNE_TRAINER_IMAGE test images you built
yourself instead of building them here. docs/images.md tells the whole story.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import pytest

from tests.factories import REPO

# A cold trainer build downloads the locked training stack (GBs): far beyond the default.
BUILD_TIMEOUT_S = 3600


@pytest.fixture(scope="session")
def docker_host() -> str:
    """DOCKER_HOST of an engine that answers (set in os.environ for the docker client)."""
    if os.environ.get("KUBETUNE_SKIP_IMAGES") == "1":
        pytest.skip("KUBETUNE_SKIP_IMAGES=1")
    found = subprocess.run([str(REPO / "hack/docker")], capture_output=True, text=True)
    if found.returncode != 0:
        reason = (found.stderr.strip().splitlines() or ["hack/docker failed"])[-1]
        pytest.skip(f"no Docker engine: {reason}")
    host = found.stdout.strip().removeprefix("export DOCKER_HOST=")
    os.environ["DOCKER_HOST"] = host
    return host


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


@pytest.fixture(scope="session")
def operator_image(docker_host: str) -> str:
    return build("operator")


@pytest.fixture(scope="session")
def trainer_image(docker_host: str) -> str:
    return build("trainer")


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
