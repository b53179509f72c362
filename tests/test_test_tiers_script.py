"""hack/test-tiers.sh, `make test`'s pytest runs: the kind tier and then the images tier beside
the other tiers, every run always run, and the exit status the first failing run's.

`pytest` here is a stand-in script on PATH (the real runs are the whole suite): it records its
arguments, and the foreground run waits for the kind run to have started, so a script that ran
them one after the other would fail the test by timing out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.factories import REPO

SCRIPT = REPO / "hack/test-tiers.sh"

FAKE_PYTEST = """#!/usr/bin/env bash
# "$2" is the -m expression: "kind", "images", or the other tiers'.
case $2 in kind|images) run=$2 ;; *) run=rest ;; esac
echo "$*" > "$RECORDS/$run.args"
if [[ $run == rest && $BESIDE == 1 ]]; then
  for _ in $(seq 100); do [[ -e $RECORDS/kind.args ]] && break; sleep 0.1; done
  [[ -e $RECORDS/kind.args ]] || { echo "the kind run never started beside this one"; exit 99; }
fi
echo "output of the $run run"
case $run in kind) exit "$KIND_EXIT" ;; images) exit "$IMAGES_EXIT" ;; *) exit "$REST_EXIT" ;; esac
"""


def run_script(
    tmp_path: Path, rest: int, kind: int, images: int = 0, beside: bool = True
) -> tuple[int, str]:
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
        "IMAGES_EXIT": str(images),
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
    ("rest", "kind", "images", "expected"),
    [
        (0, 0, 0, 0),
        (1, 0, 0, 1),
        (0, 1, 0, 1),
        (0, 0, 3, 3),
        (2, 1, 0, 2),
        (0, 1, 2, 1),
        (5, 0, 0, 0),
        (0, 5, 5, 0),
        (5, 5, 5, 5),
    ],
)
def test_every_run_runs_and_the_first_failure_is_the_exit_status(
    tmp_path: Path, rest: int, kind: int, images: int, expected: int
) -> None:
    code, output = run_script(tmp_path, rest, kind, images)
    assert code == expected, output
    records = tmp_path / "records"
    assert (records / "rest.args").read_text().split() == [
        "-m", "not", "unit", "and", "not", "kind", "and", "not", "images", "-x", "--durations=25"
    ]  # fmt: skip
    for run in ("kind", "images"):
        args = (records / f"{run}.args").read_text().split()
        assert args[:4] == ["-m", run, "--basetemp", args[3]]
        assert args[4:] == ["-x", "--durations=25"]
    # The background runs' output is printed after the foreground run's, under a heading.
    heading = "the kind and images tiers, run beside the others"
    assert output.index("output of the rest run") < output.index(heading)
    assert output.index(heading) < output.index("output of the kind run")
    assert output.index("output of the kind run") < output.index("output of the images run")
    # A failed background run's folder stays for a look; a passed one's is removed.
    left = list(tmp_path.glob("kubetune-kind-tier.*"))
    assert len(left) == (0 if kind in (0, 5) and images in (0, 5) else 1)


def test_one_after_the_other_when_asked(tmp_path: Path) -> None:
    code, output = run_script(tmp_path, 0, 0, beside=False)
    assert code == 0, output
    assert output.index("output of the rest run") < output.index("output of the kind run")
    assert output.index("output of the kind run") < output.index("output of the images run")
