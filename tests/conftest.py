"""Markers registered here rather than in pyproject.toml, whose hash keys the cached venvs."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kind: needs Docker and kind (tests/e2e/kind/up.sh); skips without them"
    )
