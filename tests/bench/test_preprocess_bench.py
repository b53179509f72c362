"""bench/preprocess_throughput.py on a small preset (Qwen 2's vocabulary; 80 short, 20
multi-turn and 40 tool chats): it completes and reports, so the script cannot rot. The bench
itself checks that kubetune's masked samples hold exactly the tokens of raw tokenization; the
ratios are the bench's to give (docs/benchmarks.md), only their presence and sanity are checked
here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.factories import REPO
from tests.support.vocabularies import llama_cpp_models


def test_the_preprocessing_bench_runs_every_kind_and_reports(tmp_path: Path) -> None:
    llama_cpp_models(tier="bench")
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench/preprocess_throughput.py"),
            *("--conversations", "80", "--vocab", "qwen2", "--repeat", "1", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r["kind"] for r in rows] == ["short", "multi-turn", "tools"]
    for row in rows:
        assert row["tokens"] > 10 * row["conversations"]
        for side in (row["oneCore"], row["allCores"]):
            assert side["kubetuneTokensPerSecond"] > 0 and 0 < side["ratio"] < 10
        assert row["oneCore"]["cores"] == 1
    assert "overall, allCores" in done.stdout
