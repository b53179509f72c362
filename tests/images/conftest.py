"""The images as users get them: built from the repository's Dockerfile by hack/images.py
(cached by a content key), run with `docker run` the way the pods run them.

An engine comes from hack/docker (the one that answers, else a dockerd of our own, started as
root). Without one these tests skip, saying why (in CI they fail: tests/support/tiers.py);
`-m "not images"` leaves them out. KUBETUNE_OPERATOR_IMAGE / KUBETUNE_TRAINER_IMAGE test images you built
yourself instead of building them here. docs/images.md tells the whole story.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.factories import REPO
from tests.support.images import build
from tests.support.tiers import unavailable


@pytest.fixture(scope="session")
def docker_host() -> str:
    """DOCKER_HOST of an engine that answers (set in os.environ for the docker client)."""
    found = subprocess.run([str(REPO / "hack/docker")], capture_output=True, text=True)
    if found.returncode != 0:
        reason = (found.stderr.strip().splitlines() or ["hack/docker failed"])[-1]
        unavailable("images", f"no Docker engine: {reason}")
    host = found.stdout.strip().removeprefix("export DOCKER_HOST=")
    os.environ["DOCKER_HOST"] = host
    return host


@pytest.fixture(scope="session")
def operator_image(docker_host: str) -> str:
    return build("operator")


@pytest.fixture(scope="session")
def trainer_image(docker_host: str) -> str:
    return build("trainer")
