"""A real local Kubernetes control plane for kubetune's tests, without Docker.

    hack/local-cluster up       build what is missing, start (or reuse) the cluster
    hack/local-cluster up --kueue   the same, plus Kueue (built on first use, ~10 min cold)
    hack/local-cluster status   what runs, and the memory it holds
    hack/local-cluster recycle  empty the Released volumes and make them Available again
    hack/local-cluster down     stop every process it started, by PID
    hack/local-cluster kueue-down   remove Kueue (its manager, webhooks and CRDs); the rest stays
    hack/local-cluster config   print kwokctl's configuration for it (builds nothing)

`up` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kwok
controller as local processes through `kwokctl --runtime binary` (all bound to 127.0.0.1),
installs the PyTorchJob CRD, starts the Kubeflow training-operator out of cluster and an S3
server (SeaweedFS, s3_server.py), creates two fake GPU nodes and a pool of hostPath
PersistentVolumes, and prints exports: the S3 endpoint and credentials file, PATH, and
`export KUBECONFIG=…` as its last line. With `--kueue` it also installs Kueue and starts its
manager (hack/cluster/kueue.py); without it, a Kueue left by an earlier `up --kueue` keeps
running. See docs/local-cluster.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kueue
import pids
import s3_server
import training_operator
import yaml
from binaries import Binaries, versions
from cluster_objects import (
    GPU_NODES,
    gpu_node,
    kwok_config,
    storage_objects,
)

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("KUBETUNE_CACHE", Path.home() / ".cache" / "kubetune"))
NAME = os.environ.get("KUBETUNE_CLUSTER", "kubetune")
STATE = CACHE / "cluster" / NAME
KWOK_WORKDIR = STATE / "kwok"
CLUSTER_DIR = KWOK_WORKDIR / "clusters" / NAME
KUBECONFIG = CLUSTER_DIR / "kubeconfig.yaml"
OPERATOR_PID = training_operator.paths(STATE)["pid"]
KUEUE_PID = STATE / "kueue.pid"
VOLUMES = STATE / "volumes"


def log(msg: str) -> None:
    print(f"[local-cluster] {msg}", file=sys.stderr, flush=True)


# --- kubectl -------------------------------------------------------------------------------


def kubectl(bins: Binaries, *args: str, stdin: str | None = None, check: bool = True) -> str:
    cmd = [bins.kubectl, "--kubeconfig", str(KUBECONFIG), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def apply(bins: Binaries, objects: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(objects)
    kubectl(bins, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=text)


def api_ready(bins: Binaries) -> bool:
    if not KUBECONFIG.exists():
        return False
    proc = subprocess.run(
        [
            bins.kubectl,
            "--kubeconfig",
            str(KUBECONFIG),
            "get",
            "--raw",
            "/readyz",
            "--request-timeout=3s",
        ],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0 and proc.stdout.strip() == "ok"


def wait_for(what: str, check: Callable[[], object], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_condition(bins: Binaries, resource: str, condition: str, timeout: float = 60) -> None:
    """Poll rather than `kubectl wait`, which errors on an object with no conditions yet."""
    path = f"{{.status.conditions[?(@.type=='{condition}')].status}}"
    wait_for(
        f"{resource} {condition}",
        lambda: kubectl(bins, "get", resource, "-o", f"jsonpath={path}", check=False) == "True",
        timeout=timeout,
    )


def recycle_volumes(bins: Binaries) -> None:
    """Make Released volumes Available again (emptied), so a reused cluster never runs dry.

    Nothing provisions volumes here and the pool's reclaim policy is Retain, so a volume whose
    claim was deleted stays Released until its claimRef is cleared.
    """
    volumes = json.loads(kubectl(bins, "get", "pv", "-l", "kubetune.io/local-volume", "-o", "json"))
    for pv in volumes["items"]:
        if pv.get("status", {}).get("phase") != "Released":
            continue
        path = Path(pv["spec"]["hostPath"]["path"])
        if path.is_relative_to(VOLUMES):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True, exist_ok=True)
        kubectl(
            bins,
            "patch",
            "pv",
            pv["metadata"]["name"],
            "--type=json",
            "-p",
            '[{"op": "remove", "path": "/spec/claimRef"}]',
        )


def pytorchjob_crd() -> Path:
    """The vendored copy (manifests/third_party/training-operator/README.md)."""
    version = versions()["TRAINING_OPERATOR_VERSION"]
    third_party = HERE.parents[1] / "manifests" / "third_party" / "training-operator"
    return third_party / version / "kubeflow.org_pytorchjobs.yaml"


# --- the control plane's own processes --------------------------------------------------


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def stopped_components() -> list[str]:
    """Components kwokctl started that no longer run. Nothing restarts them here (no kubelet);
    kube-controller-manager and kube-scheduler exit by design when they lose their leader
    lease, e.g. while the API server is down."""
    return [c for c in COMPONENTS if not pids.alive(CLUSTER_DIR / "pids" / f"{c}.pid", c)]


# --- commands ------------------------------------------------------------------------------


def kueue_dir() -> Path:
    """Build Kueue's piece if missing (a no-op when cached) and return its folder."""
    out = subprocess.run(
        [str(HERE / "build-binaries.sh"), "kueue"], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return Path(out.strip().split("=", 1)[1])


def up(with_kueue: bool = False) -> int:
    started = time.monotonic()
    bins = Binaries.build()
    kueue_bin = kueue_dir() if with_kueue else None
    STATE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KWOK_WORKDIR": str(KWOK_WORKDIR)}
    config, wanted = (
        STATE / "kwok.yaml",
        kwok_config(bins.kubernetes, bins.etcd, bins.kwok, versions()),
    )
    if api_ready(bins) and config.exists() and config.read_text() != wanted:
        log(f"the configuration of {NAME!r} changed; recreating it")
        down(quiet=True)
    if api_ready(bins) and (gone := stopped_components()):
        log(f"{', '.join(gone)} of {NAME!r} stopped; recreating it")
        down(quiet=True)
    if api_ready(bins):
        log(f"reusing the running cluster {NAME!r}")
    else:
        down(quiet=True)  # what is left of an earlier cluster, its volumes included
        config.write_text(wanted)
        log(
            f"starting cluster {NAME!r} (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
        )
        kwok_log = STATE / "kwokctl.log"
        with kwok_log.open("wb") as out:
            proc = subprocess.run(
                [
                    str(bins.kwok / "kwokctl"),
                    "create",
                    "cluster",
                    "--name",
                    NAME,
                    "--config",
                    str(config),
                    "--kubeconfig",
                    str(STATE / "kubeconfig.merged.yaml"),
                    "--wait",
                    "120s",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if proc.returncode != 0:
            log(f"kwokctl failed; its log ({kwok_log}) ends with:")
            sys.stderr.write(kwok_log.read_text()[-3000:])
            return 1
        wait_for("the API server", lambda: api_ready(bins))
    kubectl(bins, "apply", "--server-side", "--force-conflicts", "-f", str(pytorchjob_crd()))
    wait_condition(bins, "crd/pytorchjobs.kubeflow.org", "Established")
    apply(bins, [gpu_node(i) for i in range(GPU_NODES)] + storage_objects(VOLUMES))
    recycle_volumes(bins)
    training_operator.start(
        bins.training_operator,
        STATE,
        KUBECONFIG,
        lambda objects: apply(bins, objects),
        lambda *args: kubectl(bins, *args),
        wait_for,
    )
    s3_server.start(bins.seaweedfs, STATE, log)
    if kueue_bin is not None:
        kueue.install_and_start(
            kueue_bin,
            STATE,
            KUBECONFIG,
            lambda objects: apply(bins, objects),
            wait_for,
            lambda crd: wait_condition(bins, crd, "Established"),
        )
    elif not pids.alive(KUEUE_PID, kueue.COMMAND):
        kueue.delete_webhooks(lambda *args: kubectl(bins, *args))
    for i in range(GPU_NODES):
        wait_condition(bins, f"node/kwok-gpu-{i}", "Ready")
    log(f"ready in {time.monotonic() - started:.1f}s")
    s3_exports()
    print(f"export PATH={bins.clients}:$PATH")
    print(f"export KUBECONFIG={KUBECONFIG}")
    return 0


def s3_exports() -> None:
    """The S3 server's endpoint and the file with its keys (the keys are never printed)."""
    print(f"export KUBETUNE_LOCAL_S3_ENDPOINT={s3_server.ENDPOINT}")
    print(f"export KUBETUNE_LOCAL_S3_CREDENTIALS={s3_server.paths(STATE)['credentials']}")


def down(quiet: bool = False) -> int:
    s3_server.stop(STATE)
    shutil.rmtree(s3_server.paths(STATE)["root"], ignore_errors=True)  # its buckets and keys
    for pid_file, command in (
        (OPERATOR_PID, training_operator.COMMAND),
        (KUEUE_PID, kueue.COMMAND),
    ):
        pid = pids.alive(pid_file, command)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            pid_file.unlink(missing_ok=True)
    kwokctl = None
    for path in (CACHE / "bin").glob("kwok-*/kwokctl"):
        kwokctl = path
    if kwokctl and CLUSTER_DIR.exists():
        env = {**os.environ, "KWOK_WORKDIR": str(KWOK_WORKDIR)}
        subprocess.run(
            [
                str(kwokctl),
                "delete",
                "cluster",
                "--name",
                NAME,
                "--kubeconfig",
                str(STATE / "kubeconfig.merged.yaml"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=None if not quiet else subprocess.DEVNULL,
        )
    # The volume pool's folders belong to this cluster: a new one must not inherit a deleted
    # one's checkpoints (a test's job would resume from them).
    shutil.rmtree(VOLUMES, ignore_errors=True)
    if not quiet:
        log(f"cluster {NAME!r} stopped")
    return 0


def kueue_down() -> int:
    """Remove Kueue from the running cluster (kueue.remove); `up --kueue` installs it again."""
    bins = Binaries.build(paths_only=True)
    crds = kueue.remove(lambda *args: kubectl(bins, *args), KUEUE_PID)
    log(f"Kueue removed ({crds} CRDs)")
    return 0


def component_pids() -> dict[str, int]:
    found: dict[str, int] = {}
    for pid_file in sorted((CLUSTER_DIR / "pids").glob("*.pid")):
        pid = pids.alive(pid_file, pid_file.stem)
        if pid:
            found[pid_file.stem] = pid
    if pid := pids.alive(OPERATOR_PID, training_operator.COMMAND):
        found["training-operator"] = pid
    if pid := pids.alive(s3_server.paths(STATE)["pid"], s3_server.COMMAND):
        found["s3 (seaweedfs)"] = pid
    if pid := pids.alive(KUEUE_PID, kueue.COMMAND):
        found["kueue"] = pid
    return found


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return next((int(x.split()[1]) / 1024 for x in text.splitlines() if x[:6] == "VmRSS:"), 0.0)


def status() -> int:
    running = component_pids()
    if not running:
        print(f"cluster {NAME!r}: not running")
        return 1
    total = 0.0
    for name, pid in running.items():
        mib = rss_mib(pid)
        total += mib
        print(f"{name:26s} pid {pid:>7d}  {mib:8.1f} MiB")
    print(f"{'total':26s} {'':11s}  {total:8.1f} MiB")
    s3_exports()
    print(f"export KUBECONFIG={KUBECONFIG}")
    return 0


def config() -> int:
    """Print kwokctl's configuration for this cluster (the binaries need not be built yet)."""
    bins = Binaries.build(paths_only=True)
    sys.stdout.write(kwok_config(bins.kubernetes, bins.etcd, bins.kwok, versions()))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="hack/local-cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command", choices=["up", "down", "status", "config", "recycle", "kueue-down"]
    )
    parser.add_argument(
        "--kueue", action="store_true", help="up: also install and start Kueue (see kueue.py)"
    )
    args = parser.parse_args()
    if args.command == "up":
        return up(with_kueue=args.kueue)
    if args.command == "recycle":  # the test session runs it now and then (cluster_fixtures)
        recycle_volumes(Binaries.build(paths_only=True))
        return 0
    commands = {"down": down, "status": status, "config": config, "kueue-down": kueue_down}
    return commands[args.command]()


if __name__ == "__main__":
    sys.exit(main())
