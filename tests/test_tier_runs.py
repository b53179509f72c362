"""hack/test-tiers.sh with the real pytest and the real suite: its runs, each collected with
`--collect-only`, share no test and together are exactly what `pytest -m "not unit"` collects;
the background runs hold the kind tier's and the images tier's tests and nothing else.

The trainer tier (tests/support/tiers.py): collecting the whole suite imports its test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.factories import REPO

HEADING = "the kind and images tiers, run beside the others"


def collected(output: str) -> list[str]:
    """The node ids `--collect-only -q` prints, one a line (a parameter id may hold spaces)."""
    return [line for line in output.splitlines() if line.startswith("tests/") and "::" in line]


def test_the_runs_split_the_suite_without_gaps_or_overlaps(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
    }
    args = ["--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        ["bash", str(REPO / "hack/test-tiers.sh"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    foreground, background = done.stdout.split(HEADING)
    whole = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "not unit", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert whole.returncode == 0, whole.stdout[-3000:]
    rest, beside = collected(foreground), collected(background)
    assert len(set(rest)) == len(rest) and len(set(beside)) == len(beside)
    assert not set(rest) & set(beside)
    assert sorted(rest + beside) == sorted(collected(whole.stdout))
    images = [t for t in beside if t.startswith("tests/images/")]
    kind = [t for t in beside if t not in images]
    assert images and kind
    # The kind tier: the kind parameters of the end-to-end tests, and the tests that take a
    # kind cluster alone (tests/e2e/conftest.py's `kind_chain`).
    assert all(t.startswith("tests/e2e/") for t in kind), kind
    assert not [t for t in rest if t.startswith("tests/images/") or t.endswith("[kind]")]
