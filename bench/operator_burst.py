"""A burst of FineTuneJobs against the local control plane with the operator running.

    python bench/operator_burst.py [200 1000]

For each burst: p50/p99 time from the create call returning to the PyTorchJob appearing (a
watch), jobs per second, API writes per job (the operator's own count), and the operator's
RSS at the end and at its peak. Jobs are created suspended, so the training-operator starts
no pods: what is measured is the operator's create path, not kwok's pod churn. Targets:
p99 ≤ 2 s at 200, ≥ 20 jobs/s, RSS ≤ 150 MB at 1,000.

Baseline, measured first in the same run, before the operator starts: the same API server
taking the same writes with no operator in the loop — 8 client threads each create a
FineTuneJob, then its six rendered children, its status and one Event (what the operator
writes per job). Its rate is the ceiling of this API server for these writes; the bench prints
the operator's rate as a ratio of it, and the drain time of the burst at the ceiling, a lower
bound for the p99 that no operator can beat here.
"""

from __future__ import annotations

import os
import re
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


def writes(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    return sum(
        float(v)
        for v in re.findall(r"^kubetune_api_writes_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    )


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
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": "kubetune-", "namespace": namespace},
                "involvedObject": {
                    "apiVersion": made["apiVersion"],
                    "kind": made["kind"],
                    "name": made["metadata"]["name"],
                    "namespace": namespace,
                    "uid": made["metadata"]["uid"],
                },
                "type": "Normal",
                "reason": "Suspended",
                "message": "phase none → Suspended",
            }
        )

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    return n / (time.monotonic() - start)


def burst(
    n: int, metrics_port: int, api: object, custom: object, namespace: str
) -> dict[str, float]:
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
    time.sleep(3)  # let status writes settle before counting
    latencies = sorted(seen[k] - created[k] for k in created if k in seen)
    end = max(seen.values())
    return {
        "jobs": n,
        "done": len(latencies),
        "p50": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
        "rate": len(latencies) / (end - start),
        "writes": (writes(metrics_port) - before) / n,
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


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [200, 1000]
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

    metrics_port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / "kubetune-bench-operator.log", "wb")  # noqa: SIM115
    operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubetune.runtime",
            "--standalone",
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            "0",
        ],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(5)
        print(
            "jobs  created  p50 (s)  p99 (s)  jobs/s  baseline jobs/s  ratio  drain at baseline (s)"
            "  writes/job  RSS (MiB)  peak RSS (MiB)  operator CPU (s)"
        )
        for n in sizes:
            namespace = fresh_namespace(core, f"bench-{n}")
            cpu = cpu_seconds(operator.pid)
            r = burst(n, metrics_port, core, custom, namespace)
            cpu = cpu_seconds(operator.pid) - cpu
            print(
                f"{n:5d}  {r['done']:7d}  {r['p50']:7.2f}  {r['p99']:7.2f}  {r['rate']:6.1f}  "
                f"{ceiling[n]:15.1f}  {r['rate'] / ceiling[n]:5.2f}  {n / ceiling[n]:21.1f}  "
                f"{r['writes']:10.1f}  {status_mib(operator.pid):9.1f}  "
                f"{status_mib(operator.pid, 'VmHWM'):14.1f}  {cpu:16.1f}",
                flush=True,
            )
            drop_namespace(core, namespace)
    finally:
        operator.terminate()
        operator.wait(timeout=30)


if __name__ == "__main__":
    main()
