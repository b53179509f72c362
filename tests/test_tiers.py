"""The test tree keeps its own rules: every test file belongs to a tier by its folder, and no
test module imports another (shared helpers live in tests/support/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.factories import REPO
from tests.support.tiers import DESCRIPTIONS, ORDER, tier_of

TESTS = REPO / "tests"
TEST_FILES = sorted(TESTS.rglob("test_*.py"))


def test_every_tier_is_ordered_and_described() -> None:
    assert sorted(ORDER) == sorted(DESCRIPTIONS)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.relative_to(TESTS).as_posix())
def test_a_test_file_has_a_tier_and_imports_only_helpers(path: Path) -> None:
    assert tier_of(path.relative_to(TESTS).as_posix()) in ORDER
    imported = [
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests")
    ]
    assert [m for m in imported if not m.startswith("tests.support")] == []
