"""The test run's budget report (.ci/run prints it at the end, passed or failed): the time per
tier (its tests' times summed) and how busy the CPUs were meanwhile, the wall time from the first
test to the last (less than the sum: the kind and images tiers run beside the others), the
slowest tests, and the disk the run used at its peak.

    python3 hack/test-report.py REPORT_DIR

REPORT_DIR holds tests.jsonl (every phase of every test, written by tests/conftest.py when
KUBETUNE_TEST_REPORT names the folder) and samples.log (every 10 s, written by .ci/run: the
time, the disk's used MiB, and the CPUs' busy and total jiffies from /proc/stat).

A tier's CPU figure is the share of all the machine's CPU time that was busy (anything: tests,
servers, builds) from its first test's start to its last test's end: a tier well under 100%
mostly waits, and could share the machine with another.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

SLOWEST = 25


def main(folder: Path) -> None:
    lines = (
        (folder / "tests.jsonl").read_text().splitlines()
        if (folder / "tests.jsonl").exists()
        else []
    )
    records = [json.loads(line) for line in lines]
    by_tier: dict[str, float] = defaultdict(float)
    window: dict[str, tuple[float, float]] = {}
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_test: dict[str, float] = defaultdict(float)
    test_window: dict[str, tuple[float, float]] = {}
    for r in records:
        by_tier[r["tier"]] += r["seconds"]
        by_test[r["test"]] += r["seconds"]
        if "start" in r:
            widen(window, r["tier"], r)
            widen(test_window, r["test"], r)
        if r["when"] == "call" or r["outcome"] != "passed":
            outcomes[r["tier"]][r["outcome"]] += 1
    print("== budget report ==")
    samples = read_samples(folder / "samples.log")
    print(f"{'tier':<10}{'minutes':>9}{'CPU busy':>10}  outcomes")
    for tier, seconds in sorted(by_tier.items(), key=lambda kv: -kv[1]):
        counts = ", ".join(f"{n} {o}" for o, n in sorted(outcomes[tier].items()))
        shown = percent(cpu_busy(samples, *window[tier]) if tier in window else None)
        print(f"{tier:<10}{seconds / 60:>9.1f}{shown:>10}  {counts}")
    print(f"{'all':<10}{sum(by_tier.values()) / 60:>9.1f}  (the tests' times summed)")
    # The tiers after `make check` (kind and images beside the others, hack/test-tiers.sh): from
    # the first test's start to the last one's end, less than their sum.
    if after := [w for tier, w in window.items() if tier != "unit"]:
        start, stop = min(w[0] for w in after), max(w[1] for w in after)
        shown = percent(cpu_busy(samples, start, stop))
        print(f"{'wall':<10}{(stop - start) / 60:>9.1f}{shown:>10}  the tiers after unit")
    print(f"-- the {SLOWEST} slowest tests (setup + call + teardown: seconds, CPU busy) --")
    for test, seconds in sorted(by_test.items(), key=lambda kv: -kv[1])[:SLOWEST]:
        shown = percent(cpu_busy(samples, *test_window[test]) if test in test_window else None)
        print(f"{seconds:>8.1f}{shown:>6}  {test}")
    if used := [s[1] for s in samples]:
        print(
            f"disk: {used[0] / 1024:.1f} GiB used at the start, peak {max(used) / 1024:.1f} GiB "
            f"(+{(max(used) - used[0]) / 1024:.1f} GiB), {used[-1] / 1024:.1f} GiB at the end"
        )


def widen(windows: dict[str, tuple[float, float]], key: str, record: dict[str, Any]) -> None:
    """Stretch a key's (first start, last stop) window over one more phase."""
    first, last = windows.get(key, (record["start"], record["stop"]))
    windows[key] = (min(first, record["start"]), max(last, record["stop"]))


def percent(share: float | None) -> str:
    return f"{share:.0%}" if share is not None else "-"


def read_samples(path: Path) -> list[tuple[float, int, int, int]]:
    """(time, disk used MiB, busy jiffies, total jiffies) per sample; a line cut short by the
    end of the run is left out."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = line.split()
        if len(fields) == 4:
            out.append((float(fields[0]), int(fields[1]), int(fields[2]), int(fields[3])))
    return out


def cpu_busy(samples: list[tuple[float, int, int, int]], start: float, stop: float) -> float | None:
    """The busy share of all CPU time between the samples that bracket [start, stop] most
    tightly from inside (None for a window shorter than two samples)."""
    inside = [s for s in samples if start <= s[0] <= stop]
    if len(inside) < 2 or inside[-1][3] == inside[0][3]:
        return None
    return (inside[-1][2] - inside[0][2]) / (inside[-1][3] - inside[0][3])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
