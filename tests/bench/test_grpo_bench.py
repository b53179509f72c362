"""bench/grpo_throughput.py on 2 steps a side: both kubetune's GRPO job and the plain TRL
GRPOTrainer script complete the same work (2 steps of 16 completions) and report, so the script
cannot rot. The ratio is the bench's to give (docs/benchmarks.md); only its sanity is checked
here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.factories import REPO


def test_the_grpo_bench_runs_both_sides_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "grpo.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench/grpo_throughput.py"),
            *("--steps", "2", "--repeat", "1"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,  # 296 s on the 2 shared cores at load average ~10
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    for side in (result["kubetune"], result["trl"]):
        assert side["completions"] == 2 * 16
        assert len(side["reward"]) == 2  # one logged line a step
        assert side["tokens"] > side["completions"]  # prompts and completions counted
        assert 1 <= side["meanCompletionLength"] <= 32
        assert 200 < side["peakRssMiB"] < 8192
    assert 0 < result["ratio"] < 10
    assert "ratio kubetune/TRL" in done.stdout
