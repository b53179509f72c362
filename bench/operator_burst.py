"""A burst of FineTuneJobs against the local control plane with the operator running.

    python bench/operator_burst.py [--tracemalloc] [--no-restart] [200 1000]
    python bench/operator_burst.py --over-time 20 --no-baseline 10000
    python bench/operator_burst.py --no-baseline --restart-timeout 300 2000

For each burst: p50/p99 time from the create call returning to the PyTorchJob appearing (a
watch), jobs per second, API writes per job by verb and kind (the operator's own count), and
the operator's RSS at the end and at its peak, and its growth per job. Jobs are created
suspended, so the training-operator starts no pods: what is measured is the operator's create
path, not kwok's pod churn. Targets (issue 34): ≥ 0.95× the baseline's rate, p99 ≤ 10 s,
≤ 6 writes per job, RSS ≤ 150 MiB at 1,000.

Then a restart: the operator is stopped and started again over the last burst's settled jobs;
the bench reports how long until every job was reconciled and how many writes that made
(target: none). It restarts twice, in the same run: first with kopf's own start-up gate (the
baseline; quadratic in the indexed objects, see kubetune/runtime/readiness.py), then with
kubetune's, and prints the speed-up. --restart-timeout S gives up on a restart after S seconds.

Baseline, measured first in the same run, before the operator starts: the same API server
taking the same writes with no operator in the loop — 8 client threads each create a
FineTuneJob, then its rendered children and its status, exactly what the operator writes per
new suspended job. Its rate is the ceiling of this API server for these writes; the bench
prints the operator's rate as a ratio of it, and the drain time of the burst at the ceiling, a
lower bound for the p99 that no operator can beat here.

--over-time RATE creates the jobs at RATE a second instead of all at once (issue 34's
"10,000 jobs created over time"), samples the operator's RSS against the jobs it has seen
every 10 s, and reports the growth per job as the least-squares slope of those samples; then
it waits until the training-operator has settled every job and reports the RSS again.
--soak MIN keeps kubetune's restarted operator running MIN minutes, sampling its RSS every 30 s,
and prints the slope over the second half (issue 34's soak). --restart-over creates nothing and
restarts over the jobs already in the cluster (a previous run's, settled), e.g.
`--restart-over --no-baseline --soak 30`.
--no-baseline skips both baselines: the direct writes (at 10,000 jobs they alone take minutes)
and the restart with kopf's own start-up gate (quadratic: far past any timeout at 10,000).

--tracemalloc runs the operator under Python's tracemalloc (a slower operator: its rate is not
comparable) and prints where the bytes still held after each burst were allocated.

The operator's process and what it reports (metrics, CPU, memory): bench/operator_process.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from common import local_cluster  # noqa: E402
from operator_cluster import (  # noqa: E402
    apply,
    drop_namespace,
    fresh_namespace,
    reporter_access_yaml,
    settle,
)
from operator_process import (  # noqa: E402
    Operator,
    cpu_seconds,
    difference,
    kib_slope,
    restarts,
    status_mib,
    writes,
)


def job(name: str) -> dict[str, Any]:
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


def burst(n: int, metrics_port: int, api: Any, custom: Any, namespace: str) -> dict[str, Any]:
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


def over_time(
    n: int, rate: float, operator: Operator, custom: Any, namespace: str
) -> dict[str, Any]:
    """Create n jobs at `rate` a second from 8 threads, sampling (seconds, jobs whose status
    the operator wrote, RSS MiB) every 10 s until every job's status is written."""
    status = "patch_status FineTuneJob"
    before = writes(operator.metrics_port)
    pid = operator.proc.pid
    samples: list[tuple[float, float, float]] = []
    start = time.monotonic()

    def create(i: int) -> None:
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        custom.create_namespaced_custom_object(
            "kubetune.io", "v1alpha1", namespace, "finetunejobs", job(f"b{i:05d}")
        )

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(create, i) for i in range(n)]
        while True:
            done = difference(writes(operator.metrics_port), before).get(status, 0)
            samples.append((time.monotonic() - start, done, status_mib(pid)))
            if done >= n or time.monotonic() - start > n / rate + 600:
                break
            time.sleep(10)
        for future in futures:
            future.result()
    made = difference(writes(operator.metrics_port), before)
    # Growth per job: the slope of RSS over jobs done, from the first 10% on (start-up spent).
    slope = kib_slope([(d, r) for _, d, r in samples if d >= n / 10])
    return {
        "jobs": n,
        "seconds": samples[-1][0],
        "writes": {k: v / n for k, v in made.items()},
        "samples": samples,
        "kib_per_job": float("nan") if slope is None else slope,
        "rss": status_mib(pid),
        "peak": status_mib(pid, "VmHWM"),
    }


def existing_jobs(custom: Any) -> int:
    """FineTuneJobs in every namespace, listed in pages of 500."""
    count, token = 0, None
    while True:
        page = custom.list_cluster_custom_object(
            "kubetune.io", "v1alpha1", "finetunejobs", limit=500, _continue=token
        )
        count += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return count


def main() -> None:
    parser = argparse.ArgumentParser(
        description="A burst of FineTuneJobs against the local control plane with the operator "
        "running (docs/benchmarks.md)."
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="run the operator under tracemalloc (slower) and print where its bytes are held",
    )
    parser.add_argument(
        "--no-restart", action="store_true", help="skip the restart over the last burst's jobs"
    )
    parser.add_argument(
        "--over-time",
        type=float,
        metavar="RATE",
        help="create the jobs at RATE a second and sample RSS against jobs (one size)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the baselines (direct writes, kopf's gate)"
    )
    parser.add_argument(
        "--restart-timeout",
        type=float,
        default=600,
        metavar="S",
        help="give up on a restart after S seconds (600)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0,
        metavar="MIN",
        help="after the restart, keep the operator MIN minutes and sample its RSS",
    )
    parser.add_argument(
        "--restart-over",
        action="store_true",
        help="create nothing: restart over the jobs already in the cluster (an earlier run's)",
    )
    parser.add_argument(
        "sizes", nargs="*", type=int, default=[200, 1000], help="jobs per burst (200 1000)"
    )
    options = parser.parse_args()
    traced, again, sizes = options.tracemalloc, not options.no_restart, options.sizes
    kubeconfig, kubectl = local_cluster()
    apply(kubeconfig, kubectl, (ROOT / "manifests/crd/finetunejobs.kubetune.io.yaml").read_text())
    from kubernetes import client, config

    from kubetune.runtime.kube import Kube

    config.load_kube_config(kubeconfig)
    config_obj = client.Configuration.get_default_copy()
    config_obj.connection_pool_maxsize = 16
    api_client = client.ApiClient(config_obj)
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    kube = Kube(api_client)

    apply(kubeconfig, kubectl, reporter_access_yaml())  # as the chart installs them
    ceiling: dict[int, float] = {}
    for n in [] if options.no_baseline else sizes:  # before the operator starts
        namespace = fresh_namespace(core, f"bench-direct-{n}")
        ceiling[n] = direct(n, kube, namespace)
        drop_namespace(core, namespace)

    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    log = tmp / "kubetune-bench-operator.log"
    log.write_bytes(b"")
    if options.restart_over:
        n = existing_jobs(custom)
        print(f"restart over the cluster's {n} existing jobs", flush=True)
        restarts(kubeconfig, log, n, options.restart_timeout, not options.no_baseline, options.soak)
        return
    operator = Operator(kubeconfig, log, tmp / "kubetune-bench-tracemalloc.txt" if traced else None)
    namespace = ""
    if options.over_time:
        (n,) = sizes
        namespace = fresh_namespace(core, f"bench-{n}")
        try:
            r = over_time(n, options.over_time, operator, custom, namespace)
            print(
                f"{n} jobs at {options.over_time:g}/s: every status written at "
                f"{r['seconds']:.0f} s; "
                f"writes/job {sum(r['writes'].values()):.2f} ("
                + ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["writes"].items()))
                + f"); RSS {r['rss']:.1f} MiB (peak {r['peak']:.1f}), growth "
                f"{r['kib_per_job']:.1f} KiB/job (slope)",
                flush=True,
            )
            print(
                "samples (s, jobs done, RSS MiB): "
                + " ".join(f"{t:.0f}/{d:.0f}/{m:.0f}" for t, d, m in r["samples"]),
                flush=True,
            )
            waited = settle(custom, namespace, n)
            since = sum(writes(operator.metrics_port).values()) - n * sum(r["writes"].values())
            print(
                f"settled {waited:.0f} s later: RSS {status_mib(operator.proc.pid):.1f} MiB, "
                f"{since:.0f} writes since",
                flush=True,
            )
            if traced:
                print(operator.memory_report(), flush=True)
        finally:
            operator.stop()
        if again:
            restarts(
                kubeconfig, log, n, options.restart_timeout, not options.no_baseline, options.soak
            )
        return  # the namespace goes with the cluster: deleting 6 objects a job takes minutes
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
            top = ceiling.get(n, float("nan"))  # --no-baseline: none
            print(
                f"{n:5d}  {r['done']:7d}  {r['p50']:7.2f}  {r['p99']:7.2f}  {r['rate']:6.1f}  "
                f"{top:15.1f}  {r['rate'] / top:5.2f}  {n / top:21.1f}  "
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
        restarts(
            kubeconfig,
            log,
            sizes[-1],
            options.restart_timeout,
            not options.no_baseline,
            options.soak,
        )
    if namespace:
        drop_namespace(core, namespace)


if __name__ == "__main__":
    main()
