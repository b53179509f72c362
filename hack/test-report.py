"""The test run's budget report (.ci/run prints it at the end, passed or failed): wall time per
tier, the slowest tests, and the disk the run used at its peak.

    python3 hack/test-report.py REPORT_DIR

REPORT_DIR holds tests.jsonl (every phase of every test, written by tests/conftest.py when
KUBETUNE_TEST_REPORT names the folder) and disk.log (the disk's used MiB, sampled by .ci/run).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

SLOWEST = 25


def main(folder: Path) -> None:
    lines = (
        (folder / "tests.jsonl").read_text().splitlines()
        if (folder / "tests.jsonl").exists()
        else []
    )
    records = [json.loads(line) for line in lines]
    by_tier: dict[str, float] = defaultdict(float)
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_test: dict[str, float] = defaultdict(float)
    for r in records:
        by_tier[r["tier"]] += r["seconds"]
        by_test[r["test"]] += r["seconds"]
        if r["when"] == "call" or r["outcome"] != "passed":
            outcomes[r["tier"]][r["outcome"]] += 1
    print("== budget report ==")
    print(f"{'tier':<10}{'minutes':>9}  outcomes")
    for tier, seconds in sorted(by_tier.items(), key=lambda kv: -kv[1]):
        counts = ", ".join(f"{n} {o}" for o, n in sorted(outcomes[tier].items()))
        print(f"{tier:<10}{seconds / 60:>9.1f}  {counts}")
    print(f"{'all':<10}{sum(by_tier.values()) / 60:>9.1f}")
    print(f"-- the {SLOWEST} slowest tests (setup + call + teardown, seconds) --")
    for test, seconds in sorted(by_test.items(), key=lambda kv: -kv[1])[:SLOWEST]:
        print(f"{seconds:>8.1f}  {test}")
    disk = folder / "disk.log"
    if disk.exists() and (used := [int(v) for v in disk.read_text().split()]):
        print(
            f"disk: {used[0] / 1024:.1f} GiB used at the start, peak {max(used) / 1024:.1f} GiB "
            f"(+{(max(used) - used[0]) / 1024:.1f} GiB), {used[-1] / 1024:.1f} GiB at the end"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
