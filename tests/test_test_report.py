"""hack/test-report.py, the budget report .ci/run prints: tiers' summed times, the wall time of
the tiers after unit when two ran side by side, and the CPU busy share during each slow test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.factories import REPO


def phase(test: str, tier: str, start: float, stop: float) -> dict[str, object]:
    return {
        "test": test,
        "tier": tier,
        "when": "call",
        "seconds": stop - start,
        "outcome": "passed",
        "start": start,
        "stop": stop,
    }


def test_overlapping_tiers_show_a_wall_time_under_their_sum(tmp_path: Path) -> None:
    records = [
        phase("tests/api/test_a.py::test_unit", "unit", 0, 10),
        # After make check: the trainer tier 100..400 s, the kind tier beside it 150..330 s.
        phase("tests/trainer/test_b.py::test_long", "trainer", 100, 400),
        phase("tests/e2e/test_c.py::test_kind[kind]", "kind", 150, 330),
    ]
    (tmp_path / "tests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    # Every 10 s: time, disk MiB, busy and total jiffies. Half busy until 200 s, then all busy.
    samples, busy, total = [], 0, 0
    for t in range(0, 410, 10):
        samples.append(f"{t} {1000 + t} {busy} {total}")
        total += 200
        busy += 100 if t < 200 else 200
    (tmp_path / "samples.log").write_text("\n".join(samples) + "\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "hack/test-report.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert lines["all"][1] == f"{(10 + 300 + 180) / 60:.1f}"
    # From the trainer test's start to its end, not counting the unit tier before them.
    assert lines["wall"][1:3] == [f"{300 / 60:.1f}", f"{(100 * 100 + 200 * 200) / (300 * 200):.0%}"]
    slow = [line.split() for line in done.stdout.splitlines() if "::" in line]
    assert slow[0] == ["300.0", lines["wall"][2], "tests/trainer/test_b.py::test_long"]
    # 150..200 s half busy, 200..330 s all busy: (5 * 100 + 13 * 200) / (18 * 200) jiffies.
    assert slow[1] == ["180.0", "86%", "tests/e2e/test_c.py::test_kind[kind]"]
    assert "+0.4 GiB" in done.stdout
