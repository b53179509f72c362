"""The operator image: its entry point works as uid 1000 on a read-only root filesystem,
as the chart's securityContext runs it."""

from __future__ import annotations

import pytest

from tests.support.factories import REPO
from tests.support.images import BUILD_TIMEOUT_S, docker_run

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S)


def test_operator_help_as_uid_1000_read_only(operator_image: str) -> None:
    result = docker_run(operator_image, ["--read-only"], ["--help"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Usage: kubetune operator" in result.stdout


def test_version_as_uid_1000_read_only(operator_image: str) -> None:
    result = docker_run(operator_image, ["--read-only", "--entrypoint", "kubetune"], ["version"])
    assert result.returncode == 0, result.stdout + result.stderr
    version = next(
        line.split('"')[1]
        for line in (REPO / "pyproject.toml").read_text().splitlines()
        if line.startswith("version = ")
    )
    assert result.stdout.strip() == version


def test_no_training_stack_and_no_build_ca(operator_image: str) -> None:
    """The slim image has no torch, and the build's extra CA certificates stayed behind."""
    script = (
        "import importlib.util, pathlib; "
        "assert importlib.util.find_spec('torch') is None, 'torch'; "
        "assert not pathlib.Path('/etc/kubetune-build-ca').exists(), 'build CA'; "
        "print('ok')"
    )
    result = docker_run(operator_image, ["--read-only", "--entrypoint", "python3"], ["-c", script])
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr
