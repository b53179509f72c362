"""hack/test-tiers.sh, `make test`'s two pytest runs: the kind tier beside the other tiers, both
always run, and the exit status the first failing run's.

`pytest` here is a stand-in script on PATH (the real runs are the whole suite): it records its
arguments, and the non-kind run waits for the kind run to have started, so a script that ran
them one after the other would fail the test by timing out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.factories import REPO

SCRIPT = REPO / "hack/test-tiers.sh"

FAKE_PYTEST = """#!/usr/bin/env bash
# "$2" is the -m expression: "kind", or "not unit and not kind".
[[ $2 == kind ]] && run=kind || run=rest
echo "$*" > "$RECORDS/$run.args"
if [[ $run == rest && $BESIDE == 1 ]]; then
  for _ in $(seq 100); do [[ -e $RECORDS/kind.args ]] && break; sleep 0.1; done
  [[ -e $RECORDS/kind.args ]] || { echo "the kind run never started beside this one"; exit 99; }
fi
echo "output of the $run run"
[[ $run == kind ]] && exit "$KIND_EXIT" || exit "$REST_EXIT"
"""


def run_script(tmp_path: Path, rest: int, kind: int, beside: bool = True) -> tuple[int, str]:
    bin_dir, records = tmp_path / "bin", tmp_path / "records"
    bin_dir.mkdir()
    records.mkdir()
    fake = bin_dir / "pytest"
    fake.write_text(FAKE_PYTEST)
    fake.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORDS": str(records),
        "REST_EXIT": str(rest),
        "KIND_EXIT": str(kind),
        "BESIDE": "1" if beside else "0",
        "KUBETUNE_KIND_BESIDE": "1" if beside else "0",
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), "-x", "--durations=25"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("rest", "kind", "expected"),
    [(0, 0, 0), (1, 0, 1), (0, 1, 1), (2, 1, 2), (5, 0, 0), (0, 5, 0), (5, 5, 5)],
)
def test_both_runs_run_and_the_first_failure_is_the_exit_status(
    tmp_path: Path, rest: int, kind: int, expected: int
) -> None:
    code, output = run_script(tmp_path, rest, kind)
    assert code == expected, output
    records = tmp_path / "records"
    assert (records / "rest.args").read_text().split() == [
        "-m", "not", "unit", "and", "not", "kind", "-x", "--durations=25"
    ]  # fmt: skip
    kind_args = (records / "kind.args").read_text().split()
    assert kind_args[:4] == ["-m", "kind", "--basetemp", kind_args[3]]
    assert kind_args[4:] == ["-x", "--durations=25"]
    # The kind run's output is printed after the other run's, under its own heading.
    assert output.index("output of the rest run") < output.index("the kind tier (pytest -m kind)")
    assert output.index("the kind tier (pytest -m kind)") < output.index("output of the kind run")
    # A failed kind run's folder stays for a look; a passed one's is removed.
    left = list(tmp_path.glob("kubetune-kind-tier.*"))
    assert len(left) == (0 if kind in (0, 5) else 1)


def test_one_after_the_other_when_asked(tmp_path: Path) -> None:
    code, output = run_script(tmp_path, 0, 0, beside=False)
    assert code == 0, output
    assert output.index("output of the rest run") < output.index("output of the kind run")
