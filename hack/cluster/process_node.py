"""A process node for the local cluster: pods bound to it run for real, as local processes.

kwok fakes the GPU nodes; this node is a small kubelet. It registers the Node
`kubetune-local` (label `kubetune.io/process-node=true`, taint of the same key, so only pods
that ask for it land here), keeps its Lease and Ready condition fresh, and for each pod bound
to it:

- runs the init containers one after another, then the containers, each as a local process
  with the pod's own command, args and environment (env, envFrom, fieldRef, secretKeyRef,
  configMapKeyRef, `$(VAR)` expansion, the KUBERNETES_SERVICE_* variables);
- in its own mount and UTS namespace (`unshare`): the hostname is the pod's name; every
  volumeMount is a bind mount at its mountPath of the directory behind the volume — the
  PersistentVolume's hostPath for a claim, files written from the object for configMap,
  secret, downwardAPI and projected volumes (the ServiceAccount token comes from the
  TokenRequest API, bound to the pod, as a kubelet gets it), a tmpfs for a memory emptyDir;
- with /etc/hosts mapping the pod's name and every Service of its namespace (short and
  qualified names) to 127.0.0.1, so `<job>-master-0` reaches the master's process;
- writes the pod's phase, conditions, container states and exit codes back to the API server,
  and on deletion sends SIGTERM, waits the grace period, SIGKILLs, and removes the pod.

What a container image provides comes from this machine: PATH starts with the directory of
the Python running this node (the project's venv stands in for the trainer image), HOME is a
per-pod folder, and there are no GPUs (CUDA_VISIBLE_DEVICES=""). All pods share this
machine's network, so two multi-node jobs on this node at once would contend for the master
port; the tests run them one after another. Processes run as this user, not runAsUser
(the PersistentVolumes are hostPath folders owned by it). `kubectl logs` has no kubelet to
ask: each container's output is in <state>/pods/<namespace>_<pod>/<container>.log.

    python hack/cluster/process_node.py --kubeconfig K [--state DIR] [--name kubetune-local]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from node_api import Cluster, micro_now, node_object, node_status, now
from pod_runner import PodRunner

from kubetune.render.metadata import Obj

NODE = "kubetune-local"
TERMINAL = ("Succeeded", "Failed")
log = logging.getLogger("process-node")


class ProcessNode:
    def __init__(self, cluster: Cluster, name: str, state: Path) -> None:
        self.cluster, self.name, self.state = cluster, name, state
        self.runners: dict[str, PodRunner] = {}
        self.deleting: set[str] = set()
        self.lock = threading.Lock()

    def register(self) -> None:
        core = self.cluster.core
        try:
            core.create_node(client.V1Node.model_validate(node_object(self.name)))
        except ApiException as err:
            if err.status != 409:
                raise
            core.patch_node(self.name, node_object(self.name))
        self.heartbeat()

    def heartbeat(self) -> None:
        self.cluster.core.patch_node_status(self.name, node_status(self.name))
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": micro_now()}
        lease = client.V1Lease(spec=client.V1LeaseSpec.model_validate(spec))
        try:
            current = self.cluster.coord.read_namespaced_lease(self.name, "kube-node-lease")
            assert current.metadata is not None, "a stored Lease has metadata"
            lease.metadata = client.V1ObjectMeta(
                name=self.name,
                namespace="kube-node-lease",
                resource_version=current.metadata.resource_version,
            )
            self.cluster.coord.replace_namespaced_lease(self.name, "kube-node-lease", lease)
        except ApiException as err:
            if err.status != 404:
                raise
            lease.metadata = client.V1ObjectMeta(name=self.name, namespace="kube-node-lease")
            self.cluster.coord.create_namespaced_lease("kube-node-lease", lease)

    def beat_forever(self) -> None:
        while True:
            time.sleep(5)
            try:
                self.heartbeat()
                for runner in list(self.runners.values()):
                    if not runner.done.is_set() and (runner.dir / "hosts").exists():
                        runner.inputs.hosts_file()
            except Exception:
                log.exception("heartbeat failed")

    def serve(self) -> None:
        self.register()
        threading.Thread(target=self.beat_forever, daemon=True, name="heartbeat").start()
        log.info("node %s ready; watching its pods", self.name)
        w = watch.Watch()
        while True:
            try:
                for event in w.stream(
                    self.cluster.core.list_pod_for_all_namespaces,
                    field_selector=f"spec.nodeName={self.name}",
                    timeout_seconds=60,
                ):
                    pod = self.cluster.api.sanitize_for_serialization(event["object"])
                    self.handle(event["type"], pod)
            except Exception:
                log.exception("watch failed; re-listing")
                time.sleep(1)

    def handle(self, kind: str, pod: Obj) -> None:
        meta, status = pod["metadata"], pod.get("status") or {}
        uid = meta["uid"]
        with self.lock:
            runner = self.runners.get(uid)
            if kind == "DELETED":
                if runner:
                    threading.Thread(target=runner.stop, args=(0,), daemon=True).start()
                    self.runners.pop(uid, None)
                return
            if meta.get("deletionTimestamp"):
                if uid not in self.deleting:
                    self.deleting.add(uid)
                    grace = int(meta.get("deletionGracePeriodSeconds") or 0)
                    threading.Thread(
                        target=self.terminate, args=(pod, runner, grace), daemon=True
                    ).start()
                return
            if runner or status.get("phase") in TERMINAL:
                return
            if status.get("containerStatuses") and any(
                "running" in s.get("state", {}) for s in status["containerStatuses"]
            ):
                # Running before this node (re)started: its processes are gone.
                lost = PodRunner(self.cluster, pod, self.state)
                lost.statuses = [
                    lost.terminated(c, now(), 137, "the process node restarted")
                    for c in pod["spec"]["containers"]
                ]
                lost.write_status("Failed", "ProcessNodeRestarted", "the process node restarted")
                return
            runner = PodRunner(self.cluster, pod, self.state)
            self.runners[uid] = runner
            log.info("pod %s/%s: starting", meta["namespace"], meta["name"])
            runner.thread.start()

    def terminate(self, pod: Obj, runner: PodRunner | None, grace: int) -> None:
        meta = pod["metadata"]
        if runner:
            runner.stop(grace)
        try:
            self.cluster.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"])
                ),
            )
        except ApiException as err:
            if err.status not in (404, 409):
                log.warning("pod %s/%s: delete failed: %s", meta["namespace"], meta["name"], err)
        with self.lock:
            self.runners.pop(meta["uid"], None)
            self.deleting.discard(meta["uid"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--name", default=NODE)
    parser.add_argument(
        "--state", type=Path, default=Path.home() / ".cache" / "kubetune" / "process-node"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    if not shutil.which("unshare"):
        log.error("unshare (util-linux) is needed to give each container its own mounts")
        return 1
    node = ProcessNode(Cluster(args.kubeconfig), args.name, args.state)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        node.serve()
    finally:  # a stopped node takes its processes with it, as a stopped kubelet's runtime would
        for runner in list(node.runners.values()):
            runner.stop(grace=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
