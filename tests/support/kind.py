"""The kind cluster of tests/e2e/kind/up.sh, brought up once per run, in the background while the
earlier tiers run.

`up.sh` takes minutes even warm (cluster creation, loading the GB-sized trainer image into the
node), mostly I/O; the cluster, e2e and faults tiers before the kind tier mostly wait on API
servers and training processes. So the root conftest starts it when the first test of the
cluster tier (or a later one) starts, and the kind fixture takes the result, waiting only for
what is left. Run alone (`pytest -m kind`, as `make test` runs it beside the other tiers:
hack/test-tiers.sh), it starts with the first kind test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.chain import KIND_DIR, KIND_UP_TIMEOUT_S
from tests.support.factories import REPO


@dataclass
class KindUp:
    """`hack/docker`, then `up.sh`, as one background process; its output goes to files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls) -> KindUp:
        folder = Path(tempfile.mkdtemp(prefix="kubetune-kind-up."))
        stdout, stderr = folder / "stdout", folder / "stderr"
        script = f'eval "$(bash {REPO}/hack/docker)" && exec bash {KIND_DIR}/up.sh'
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                ["bash", "-c", script], stdout=out, stderr=err, start_new_session=True
            )
        return cls(process, stdout, stderr)

    def result(self) -> dict[str, str]:
        """Waits for up.sh; its KEY=VALUE lines (KUBECONFIG, TRAINER_IMAGE), or AssertionError
        with the end of its log."""
        code = self.process.wait(timeout=KIND_UP_TIMEOUT_S)
        log = self.stderr.read_text(errors="replace")
        print(log[-20000:])  # up.sh's progress, shown with the first kind test's output
        assert code == 0, f"tests/e2e/kind/up.sh failed ({code}):\n{log[-4000:]}"
        lines = self.stdout.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and " " not in line)


# Whether this run selected kind tests (and has not started up.sh yet); the background bring-up;
# whether the kind fixture took it (and so deletes the cluster at its end).
WANTED = pytest.StashKey[bool]()
STARTED = pytest.StashKey[KindUp]()
TAKEN = pytest.StashKey[bool]()


def start_in_background(config: pytest.Config) -> None:
    """Starts up.sh once, when a Docker engine can be had (else the kind fixture says why)."""
    if not config.stash.get(WANTED, False):
        return
    config.stash[WANTED] = False
    engine = shutil.which("docker") and subprocess.run(
        [str(REPO / "hack/docker")], capture_output=True
    )
    if engine and engine.returncode == 0:
        config.stash[STARTED] = KindUp.start()


def stop_untaken(config: pytest.Config) -> None:
    """At the end of a run whose kind tests never ran (a failure or an interrupt before them):
    stop the background up.sh and delete what it made, unless KUBETUNE_KIND_KEEP=1."""
    started = config.stash.get(STARTED, None)
    if started is None or config.stash.get(TAKEN, False):
        return
    if started.process.poll() is None:
        os.killpg(started.process.pid, signal.SIGTERM)
        started.process.wait(timeout=60)
    if os.environ.get("KUBETUNE_KIND_KEEP") != "1":
        subprocess.run(["bash", str(KIND_DIR / "up.sh"), "down"], capture_output=True)
