"""bench/gpu/run.py on CPU, its `cpu` preset (a tiny model of Llama-3-8B's architecture): it
completes and reports, so the script a GPU session runs cannot rot between GPU sessions. The
figures themselves are the GPU's to give (docs/benchmarks.md); only their presence and sanity
are checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.factories import REPO


def test_the_gpu_bench_runs_every_configuration_on_cpu_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench/gpu/run.py"), "--preset", "cpu", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-bench.json").read_text())

    # every attention implementation kept packed samples apart, against a real leak's size
    assert set(report["samplesApart"]) == {"sdpa", "flex_attention", "eager"}
    for check in report["samplesApart"].values():
        assert check["apart"] and check["maxError"] < 1e-4 < check["leak"]

    runs = {r["name"]: r for r in report["runs"]}
    assert {r["side"] for r in runs.values()} == {"kubetune", "trl"}
    assert {r["method"] for r in runs.values()} == {"lora", "qlora", "full"}
    for run in runs.values():
        assert "error" not in run, run
        assert run["tokensPerSecond"] > 0 and run["tokens"] > 0
        # MFU: measured rate and 4N/6N per token, so between 0 and 1 on any machine
        assert 0 < run["mfu"] < run["mfuWithAttention"] < 1
        assert run["packing"] is (run["fill"] is not None)
        assert not run["packing"] or 0.9 < run["fill"] <= 1  # packed rows, both sides
    assert runs["kubetune qlora 256 sdpa"]["ratioToTrl"] > 0
    assert runs["kubetune lora 256 sdpa"]["ratioToTrl"] > 0
    assert "kubetune qlora 256 sdpa" in done.stdout  # the table was printed
