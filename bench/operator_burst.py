"""A burst of FineTuneJobs against the local control plane with the operator running.

    python bench/operator_burst.py [--tracemalloc] [--no-restart] [200 1000]

For each burst: p50/p99 time from the create call returning to the PyTorchJob appearing (a
watch), jobs per second, API writes per job by verb and kind (the operator's own count), and
the operator's RSS at the end and at its peak, and its growth per job. Jobs are created
suspended, so the training-operator starts no pods: what is measured is the operator's create
path, not kwok's pod churn. Targets (issue 34): ≥ 0.95× the baseline's rate, p99 ≤ 10 s,
≤ 6 writes per job, RSS ≤ 150 MiB at 1,000.

Then a restart: the operator is stopped and started again over the last burst's settled jobs;
the bench reports how long until every job was reconciled and how many writes that made
(target: none).

Baseline, measured first in the same run, before the operator starts: the same API server
taking the same writes with no operator in the loop — 8 client threads each create a
FineTuneJob, then its rendered children and its status, exactly what the operator writes per
new suspended job. Its rate is the ceiling of this API server for these writes; the bench
prints the operator's rate as a ratio of it, and the drain time of the burst at the ceiling, a
lower bound for the p99 that no operator can beat here.

--tracemalloc runs the operator under Python's tracemalloc (a slower operator: its rate is not
comparable) and prints where the bytes still held after each burst were allocated.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from common import local_cluster  # noqa: E402

from kubetune.local_run import free_port  # noqa: E402


def job(name: str) -> dict:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"source": "hf://org/model"},
            "dataset": {"sources": [{"source": "hf://org/data"}]},
            "distributed": {"gpusPerNode": 1},
            "runPolicy": {"suspend": True},
        },
    }


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


def direct(n: int, kube: Any, namespace: str) -> float:
    """The baseline: the operator's writes for n jobs, made straight by 8 client threads;
    returns jobs per second."""
    from kubetune.api.job import parse_job
    from kubetune.render import RenderSettings, render

    settings = RenderSettings()

    def one(i: int) -> None:
        made = kube.create(
            {**job(f"b{i:05d}"), "metadata": {"name": f"b{i:05d}", "namespace": namespace}}
        )
        for child in render(parse_job(made), settings):
            kube.create(child)
        kube.patch_status(made["metadata"]["name"], namespace, {"phase": "Suspended"})
        # The operator's Event for a first phase: none unless it is Failed (handlers.phase_event)

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    return n / (time.monotonic() - start)


def burst(n: int, metrics_port: int, api: object, custom: object, namespace: str) -> dict[str, Any]:
    from kubernetes import watch

    seen: dict[str, float] = {}
    done = threading.Event()

    def watcher() -> None:
        w = watch.Watch()
        for event in w.stream(
            custom.list_namespaced_custom_object,
            "kubeflow.org",
            "v1",
            namespace,
            "pytorchjobs",
            timeout_seconds=600,
        ):
            if event["type"] == "ADDED":
                seen.setdefault(event["object"]["metadata"]["name"], time.monotonic())
                if len(seen) >= n:
                    done.set()
                    w.stop()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    time.sleep(1)
    before = writes(metrics_port)
    created: dict[str, float] = {}

    def create(i: int) -> None:
        name = f"b{i:05d}"
        custom.create_namespaced_custom_object(
            "kubetune.io", "v1alpha1", namespace, "finetunejobs", job(name)
        )
        created[name] = time.monotonic()

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(n)))
    done.wait(timeout=600)
    end = max(seen.values())
    # Every job's status written (a PyTorchJob is created before its job's status), then a
    # moment for any write that would follow (there should be none).
    status = "patch_status FineTuneJob"
    deadline = time.monotonic() + 60
    while difference(writes(metrics_port), before).get(status, 0) < n:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(2)
    latencies = sorted(seen[k] - created[k] for k in created if k in seen)
    return {
        "jobs": n,
        "done": len(latencies),
        "p50": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
        "rate": len(latencies) / (end - start),
        "writes": {k: v / n for k, v in difference(writes(metrics_port), before).items()},
    }


def fresh_namespace(core: object, prefix: str) -> str:
    namespace = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": namespace}})
    return namespace


def drop_namespace(core: object, namespace: str) -> None:
    """Delete and wait until it is gone, so that one burst's clean-up never slows the next."""
    from kubernetes.client.exceptions import ApiException

    core.delete_namespace(namespace)
    for _ in range(300):
        try:
            core.read_namespace(namespace)
        except ApiException:
            return
        time.sleep(1)


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


class Operator:
    """The operator as its own process, standalone, with its metrics on a free port."""

    def __init__(self, kubeconfig: str, log: Path, traced: Path | None = None) -> None:
        self.metrics_port = free_port()
        self.traced = traced
        prefix = ["-c", TRACED, "3", str(traced)] if traced else ["-m", "kubetune.runtime"]
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
        self.proc.terminate()
        self.proc.wait(timeout=60)


def settle(custom: Any, namespace: str, n: int, timeout: float = 180) -> float:
    """Wait until the training-operator has caught up with the burst (every PyTorchJob shows
    its Suspended condition), so that the restart meets settled jobs; returns the wait."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        items = custom.list_namespaced_custom_object(
            "kubeflow.org", "v1", namespace, "pytorchjobs"
        )["items"]
        suspended = sum(
            any(
                c.get("type") == "Suspended" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            for p in items
        )
        if suspended >= n:
            break
        time.sleep(2)
    return time.monotonic() - started


def restart(kubeconfig: str, log: Path, n: int) -> dict[str, float]:
    """Start an operator over n settled jobs: seconds until it has reconciled every job (and
    is idle), and the writes it made meanwhile."""
    operator = Operator(kubeconfig, log)
    try:
        while jobs_seen(operator.metrics_port) < n:
            if operator.proc.poll() is not None:
                raise SystemExit(f"the operator exited: see {log}")
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
            "ready": reconciled,
            "idle": still - operator.started,
            "reconciles": last,
            "writes": made,
            "rss": status_mib(operator.proc.pid),
        }
    finally:
        operator.stop()


def main() -> None:
    args = sys.argv[1:]
    traced = "--tracemalloc" in args
    again = "--no-restart" not in args
    sizes = [int(a) for a in args if not a.startswith("--")] or [200, 1000]
    kubeconfig, kubectl = local_cluster()
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(ROOT / "manifests/crd/finetunejobs.kubetune.io.yaml"),
        ],
        check=True,
        capture_output=True,
    )
    from kubernetes import client, config

    from kubetune.runtime.kube import Kube

    config.load_kube_config(kubeconfig)
    config_obj = client.Configuration.get_default_copy()
    config_obj.connection_pool_maxsize = 16
    api_client = client.ApiClient(config_obj)
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    kube = Kube(api_client)

    ceiling = {}
    for n in sizes:  # before the operator starts: nothing else writes
        namespace = fresh_namespace(core, f"bench-direct-{n}")
        ceiling[n] = direct(n, kube, namespace)
        drop_namespace(core, namespace)

    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    log = tmp / "kubetune-bench-operator.log"
    log.write_bytes(b"")
    operator = Operator(kubeconfig, log, tmp / "kubetune-bench-tracemalloc.txt" if traced else None)
    namespace = ""
    try:
        print(
            "jobs  created  p50 (s)  p99 (s)  jobs/s  baseline jobs/s  ratio  drain at baseline (s)"
            "  writes/job  RSS (MiB)  peak RSS (MiB)  RSS/job (KiB)  operator CPU (s)"
        )
        for n in sizes:
            if namespace:
                drop_namespace(core, namespace)
            namespace = fresh_namespace(core, f"bench-{n}")
            cpu = cpu_seconds(operator.proc.pid)
            rss = status_mib(operator.proc.pid)
            r = burst(n, operator.metrics_port, core, custom, namespace)
            cpu = cpu_seconds(operator.proc.pid) - cpu
            grown = (status_mib(operator.proc.pid) - rss) * 1024 / n
            per_job = r["writes"]
            print(
                f"{n:5d}  {r['done']:7d}  {r['p50']:7.2f}  {r['p99']:7.2f}  {r['rate']:6.1f}  "
                f"{ceiling[n]:15.1f}  {r['rate'] / ceiling[n]:5.2f}  {n / ceiling[n]:21.1f}  "
                f"{sum(per_job.values()):10.2f}  {status_mib(operator.proc.pid):9.1f}  "
                f"{status_mib(operator.proc.pid, 'VmHWM'):14.1f}  {grown:13.1f}  {cpu:16.1f}",
                flush=True,
            )
            print(
                "      writes/job by kind: "
                + ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_job.items())),
                flush=True,
            )
            if traced:
                print(operator.memory_report(), flush=True)
    finally:
        operator.stop()
    if again and namespace:
        waited = settle(custom, namespace, sizes[-1])
        print(
            f"settled: the training-operator marked every PyTorchJob Suspended {waited:.1f} s "
            "after the burst's operator stopped",
            flush=True,
        )
        r = restart(kubeconfig, log, sizes[-1])
        print(
            f"restart over {r['jobs']} settled jobs: every job reconciled {r['ready']:.1f} s "
            f"after the start, idle at {r['idle']:.1f} s ({r['reconciles']:.0f} reconciles), "
            f"{r['writes']:.0f} writes, RSS {r['rss']:.1f} MiB",
            flush=True,
        )
    if namespace:
        drop_namespace(core, namespace)


if __name__ == "__main__":
    main()
