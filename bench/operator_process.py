"""The operator as its own process for bench/operator_burst.py, and what it reports: its
Prometheus metrics (API writes by verb and kind, reconciles, jobs seen), its CPU time and its
memory (/proc), and with --tracemalloc where the bytes it still holds were allocated."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubetune.local_run import free_port


def metric(metrics_port: int, name: str) -> dict[str, float]:
    """A Prometheus metric of the operator, each label set → its value."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    found = re.findall(rf"^{name}(?:\{{([^}}]*)\}})? ([0-9.e+]+)$", text, re.M)
    return {labels: float(value) for labels, value in found}


def writes(metrics_port: int) -> dict[str, float]:
    """API writes so far by `verb kind` (create PyTorchJob, patch_status FineTuneJob, …)."""
    by: dict[str, float] = {}
    for labels, value in metric(metrics_port, "kubetune_api_writes_total").items():
        tags = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = f"{tags.get('verb')} {tags.get('kind')}"
        by[key] = by.get(key, 0) + value
    return by


def reconciles(metrics_port: int) -> float:
    return sum(metric(metrics_port, "kubetune_reconcile_seconds_count").values())


def jobs_seen(metrics_port: int) -> float:
    """FineTuneJobs reconciled at least once (its count of jobs by phase)."""
    return sum(metric(metrics_port, "kubetune_finetunejobs").values())


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_mib(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/PID/status in MiB: VmRSS now, VmHWM the peak."""
    line = next(
        row for row in Path(f"/proc/{pid}/status").read_text().splitlines() if row.startswith(field)
    )
    return int(line.split()[1]) / 1024


TRACED = """
import signal, sys, tracemalloc
tracemalloc.start(int(sys.argv.pop(1)))

def dump(signum, frame):
    import gc
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    with open(OUT, "w") as out:
        current, peak = tracemalloc.get_traced_memory()
        print(f"traced now {current / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB", file=out)
        for group in ("filename", "traceback"):
            print(f"--- top by {group}", file=out)
            for stat in snapshot.statistics(group)[:25]:
                lines = stat.traceback.format(limit=-6) if group == "traceback" else [
                    str(stat.traceback)
                ]
                print(f"{stat.size / 2**20:8.2f} MiB {stat.count:8d} blocks", file=out)
                for line in lines:
                    print("    " + line.strip(), file=out)

OUT = sys.argv.pop(1)
signal.signal(signal.SIGUSR1, dump)
from kubetune.runtime.main import main
sys.exit(main(sys.argv[1:]))
"""


# The operator with kopf's own start-up gate (kubetune.runtime.readiness not installed): the
# restart's baseline.
KOPFS_GATE = """
import sys
from kubetune.runtime import readiness
readiness.install = lambda: None
from kubetune.runtime.main import main
sys.exit(main(sys.argv[1:]))
"""


class Operator:
    """The operator as its own process, standalone, with its metrics on a free port.
    `kopfs_gate`: with kopf's own start-up gate instead of kubetune's (runtime/readiness.py)."""

    def __init__(
        self, kubeconfig: str, log: Path, traced: Path | None = None, kopfs_gate: bool = False
    ) -> None:
        self.metrics_port = free_port()
        self.traced = traced
        prefix = (
            ["-c", TRACED, "3", str(traced)]
            if traced
            else ["-c", KOPFS_GATE]
            if kopfs_gate
            else ["-m", "kubetune.runtime"]
        )
        args = ["--standalone", "--metrics-port", str(self.metrics_port), "--health-port", "0"]
        self.proc = subprocess.Popen(
            [sys.executable, *prefix, *args],
            env={**os.environ, "KUBECONFIG": kubeconfig},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.started = time.monotonic()
        while True:  # its metrics answer once it runs
            try:
                metric(self.metrics_port, "kubetune_reconcile_errors_total")
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the operator exited: see {log}") from None
                time.sleep(0.1)

    def memory_report(self) -> str:
        """tracemalloc's view (--tracemalloc): where the bytes still held were allocated."""
        assert self.traced is not None
        self.traced.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        while not self.traced.exists() or "--- top by traceback" not in self.traced.read_text():
            time.sleep(0.5)
        time.sleep(2)  # the rest of the report
        return self.traced.read_text()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 60 s (kopf's own gate can starve its event loop for
        longer than that over thousands of jobs)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=60)


def kib_slope(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of (x, MiB) points in KiB per unit of x; None when there are
    fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    xs, ys = zip(*points, strict=True)
    return statistics.linear_regression(xs, ys).slope * 1024


def soak(operator: Operator, minutes: float) -> dict[str, Any]:
    """Keep the operator running for `minutes`, sampling its RSS every 30 s: the samples
    (minutes, MiB), the least-squares slope over the second half (KiB a minute; the first
    half lets kopf's idle workers exit and the allocator settle) and the writes made."""
    before = sum(writes(operator.metrics_port).values())
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    while True:
        elapsed = (time.monotonic() - start) / 60
        samples.append((elapsed, status_mib(operator.proc.pid)))
        if elapsed >= minutes:
            break
        time.sleep(min(30.0, max(0.0, (minutes - elapsed) * 60)))
    slope = kib_slope(samples[len(samples) // 2 :])
    return {
        "samples": samples,
        "kib_per_minute": 0.0 if slope is None else slope,
        "writes": sum(writes(operator.metrics_port).values()) - before,
        "peak": status_mib(operator.proc.pid, "VmHWM"),
    }


def restart(
    kubeconfig: str,
    log: Path,
    n: int,
    timeout: float = 600,
    kopfs_gate: bool = False,
    soak_minutes: float = 0,
) -> dict[str, Any]:
    """Start an operator over n settled jobs: seconds until it has reconciled every job (and
    is idle), and the writes it made meanwhile; `ready` is None when it did not within
    `timeout` (with the jobs, reconciles and writes so far). `kopfs_gate`: kopf's own start-up
    gate instead of kubetune's (the baseline). `soak_minutes`: then keep it running that long
    (`soak`), reported as `soak`."""
    operator = Operator(kubeconfig, log, kopfs_gate=kopfs_gate)
    try:
        while jobs_seen(operator.metrics_port) < n:
            if operator.proc.poll() is not None:
                raise SystemExit(f"the operator exited: see {log}")
            if time.monotonic() - operator.started > timeout:
                return {
                    "jobs": n,
                    "ready": None,
                    "seen": jobs_seen(operator.metrics_port),
                    "reconciles": reconciles(operator.metrics_port),
                    "writes": sum(writes(operator.metrics_port).values()),
                    "rss": status_mib(operator.proc.pid),
                    "peak": status_mib(operator.proc.pid, "VmHWM"),
                }
            time.sleep(0.1)
        reconciled = time.monotonic() - operator.started
        last, still = reconciles(operator.metrics_port), time.monotonic()
        while time.monotonic() - still < 3:  # idle: no reconcile for 3 s
            now = reconciles(operator.metrics_port)
            if now != last:
                last, still = now, time.monotonic()
            time.sleep(0.2)
        made = sum(writes(operator.metrics_port).values())
        return {
            "jobs": n,
            "peak": status_mib(operator.proc.pid, "VmHWM"),
            "ready": reconciled,
            "idle": still - operator.started,
            "reconciles": last,
            "writes": made,
            "rss": status_mib(operator.proc.pid),
            "soak": soak(operator, soak_minutes) if soak_minutes else None,
        }
    finally:
        operator.stop()


def restarts(
    kubeconfig: str,
    log: Path,
    n: int,
    timeout: float,
    baseline: bool = True,
    soak_minutes: float = 0,
) -> None:
    """The restart over n settled jobs twice: first with kopf's own start-up gate (the
    baseline), then with kubetune's (runtime/readiness.py); prints both and the ratio.
    `baseline=False`: kubetune's gate only (kopf's is quadratic: hours at 10,000 jobs).
    `soak_minutes`: kubetune's restarted operator then runs that long, its RSS sampled."""
    ready: dict[str, float | None] = {}
    gates = (("kopf's own gate", True), ("kubetune's gate", False))
    for label, kopfs_gate in gates if baseline else gates[1:]:
        soaking = 0 if kopfs_gate else soak_minutes
        r = restart(kubeconfig, log, n, timeout, kopfs_gate=kopfs_gate, soak_minutes=soaking)
        ready[label] = r["ready"]
        if r["ready"] is None:
            print(
                f"restart over {n} settled jobs, {label}: not ready after {timeout:.0f} s "
                f"({r['seen']:.0f} jobs reconciled, {r['reconciles']:.0f} reconciles, "
                f"{r['writes']:.0f} writes, RSS {r['rss']:.1f} MiB, peak {r['peak']:.1f})",
                flush=True,
            )
            continue
        print(
            f"restart over {n} settled jobs, {label}: every job reconciled {r['ready']:.1f} s "
            f"after the start, idle at {r['idle']:.1f} s ({r['reconciles']:.0f} reconciles), "
            f"{r['writes']:.0f} writes, RSS {r['rss']:.1f} MiB (peak {r['peak']:.1f})",
            flush=True,
        )
        if r["soak"]:
            s = r["soak"]
            print(
                f"soak of {soaking:g} min after that restart: RSS slope {s['kib_per_minute']:.1f} "
                f"KiB/min over the second half, {s['writes']:.0f} writes, peak {s['peak']:.1f} "
                "MiB; samples (min/MiB): " + " ".join(f"{t:.1f}/{m:.1f}" for t, m in s["samples"]),
                flush=True,
            )
    base, ours = ready.get("kopf's own gate"), ready["kubetune's gate"]
    if ours and baseline:
        shown = f"{base / ours:.1f}×" if base else f"> {timeout / ours:.1f}× (baseline timed out)"
        print(f"restart speed-up over kopf's own gate: {shown}", flush=True)
