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
import base64
import contextlib
import datetime as dt
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NODE = "kubetune-local"
LABEL = "kubetune.io/process-node"
TERMINAL = ("Succeeded", "Failed")
NSLOOKUP = """#!/bin/sh
# nslookup on the process node: answers from /etc/hosts, which stands in for cluster DNS.
entry=$(getent hosts "$1") || { echo "** server can't find $1: NXDOMAIN"; exit 1; }
echo "Name: $1"
echo "Address: ${entry%% *}"
"""
log = logging.getLogger("process-node")

Obj = dict[str, Any]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                LABEL: "true",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {"taints": [{"key": LABEL, "value": "true", "effect": "NoSchedule"}]},
    }


def node_status(name: str) -> Obj:
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki", "pods": "32"}
    stamp = now()

    def cond(kind: str, status: str, reason: str) -> Obj:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }

    return {
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                cond("Ready", "True", "KubeletReady"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            "nodeInfo": {
                "kubeletVersion": "v0.0.0-kubetune-process-node",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "process://local",
                "kernelVersion": os.uname().release,
                "osImage": "local processes",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
    }


# --- the pieces of a pod that come from the API server ------------------------------------


class Cluster:
    def __init__(self, kubeconfig: str) -> None:
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.coord = client.CoordinationV1Api(self.api)
        server = urlparse(self.api.configuration.host)
        self.host, self.port = server.hostname or "127.0.0.1", str(server.port or 443)

    def read(self, kind: str, name: str, namespace: str) -> Obj:
        reader = {
            "configmap": self.core.read_namespaced_config_map,
            "secret": self.core.read_namespaced_secret,
            "pvc": self.core.read_namespaced_persistent_volume_claim,
            "pod": self.core.read_namespaced_pod,
        }[kind]
        return dict(self.api.sanitize_for_serialization(reader(name, namespace)))

    def data(self, kind: str, name: str, namespace: str) -> dict[str, bytes]:
        obj = self.read(kind, name, namespace)
        if kind == "secret":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
        return out

    def claim_path(self, claim: str, namespace: str) -> Path:
        pvc = self.read("pvc", claim, namespace)
        volume = pvc.get("spec", {}).get("volumeName")
        if not volume or pvc.get("status", {}).get("phase") != "Bound":
            raise PodError("FailedMount", f"persistentvolumeclaim {claim!r} is not bound")
        pv = self.api.sanitize_for_serialization(self.core.read_persistent_volume(volume))
        source = pv["spec"].get("hostPath") or pv["spec"].get("local")
        if not source:
            raise PodError("FailedMount", f"volume {volume!r} is not a hostPath or local volume")
        path = Path(source["path"])
        path.mkdir(parents=True, exist_ok=True)
        return path

    def token(self, pod: Obj, audience: str | None, seconds: int) -> str:
        meta = pod["metadata"]
        body = {
            "spec": {
                "audiences": [audience] if audience else None,
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            }
        }
        sa = pod["spec"].get("serviceAccountName") or "default"
        out = self.core.create_namespaced_service_account_token(sa, meta["namespace"], body)
        return str(out.status.token)

    def service_names(self, namespace: str) -> list[str]:
        names = []
        for svc in self.core.list_namespaced_service(namespace).items:
            n = svc.metadata.name
            names += [
                n,
                f"{n}.{namespace}",
                f"{n}.{namespace}.svc",
                f"{n}.{namespace}.svc.cluster.local",
            ]
        return names


class PodError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


# --- one pod ------------------------------------------------------------------------------


def field_value(pod: Obj, path: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
        return str((meta.get(m[1]) or {}).get(m[2], ""))
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path not in simple:
        raise PodError("CreateContainerConfigError", f"unsupported fieldRef {path!r}")
    return simple[path]


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion; $$(VAR) stays literal."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]),
        text,
    )


class PodRunner:
    def __init__(self, cluster: Cluster, pod: Obj, state: Path) -> None:
        self.cluster, self.pod = cluster, pod
        meta = pod["metadata"]
        self.name, self.namespace, self.uid = meta["name"], meta["namespace"], meta["uid"]
        self.dir = state / "pods" / f"{self.namespace}_{self.name}"
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.done = threading.Event()
        self.started = now()
        self.init_statuses: list[Obj] = []
        self.statuses: list[Obj] = []
        self.thread = threading.Thread(target=self.run, name=f"pod-{self.name}", daemon=True)

    # -- status --------------------------------------------------------------------------

    def write_status(
        self, phase: str, reason: str | None = None, message: str | None = None
    ) -> None:
        spec = self.pod["spec"]
        initialized = len(self.init_statuses) == len(spec.get("initContainers") or []) and all(
            s["state"].get("terminated", {}).get("exitCode") == 0 for s in self.init_statuses
        )
        ready = phase == "Running" and all(s.get("ready") for s in self.statuses)
        stamp = now()

        def cond(kind: str, ok: bool) -> Obj:
            return {"type": kind, "status": str(ok), "lastTransitionTime": stamp}

        status: Obj = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started,
            "conditions": [
                cond("PodScheduled", True),
                cond("Initialized", initialized),
                cond("ContainersReady", ready),
                cond("Ready", ready),
            ],
            "initContainerStatuses": self.init_statuses or None,
            "containerStatuses": self.statuses or [self.waiting(c) for c in spec["containers"]],
            "reason": reason,
            "message": message,
        }
        try:
            self.cluster.core.patch_namespaced_pod_status(
                self.name, self.namespace, {"status": status}
            )
        except ApiException as err:
            if err.status != 404:
                log.warning("pod %s/%s: status not written: %s", self.namespace, self.name, err)

    @staticmethod
    def waiting(container: Obj, reason: str = "PodInitializing") -> Obj:
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": reason}},
        }

    @staticmethod
    def running(container: Obj, started: str, ready: bool) -> Obj:
        return {
            **PodRunner.waiting(container),
            "ready": ready,
            "started": True,
            "state": {"running": {"startedAt": started}},
        }

    @staticmethod
    def terminated(container: Obj, started: str, code: int, message: str | None) -> Obj:
        return {
            **PodRunner.waiting(container),
            "state": {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": now(),
                    **({"message": message} if message else {}),
                }
            },
        }

    # -- environment and mounts ----------------------------------------------------------

    def environment(self, container: Obj) -> dict[str, str]:
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.pathsep.join(
                [str(self.tools), str(Path(sys.executable).parent), os.defpath]
            ),
            "HOME": str(home),
            "HOSTNAME": self.name,
            "LANG": "C.UTF-8",
            "CUDA_VISIBLE_DEVICES": "",
            "OMP_NUM_THREADS": "1",
            "KUBERNETES_SERVICE_HOST": self.cluster.host,
            "KUBERNETES_SERVICE_PORT": self.cluster.port,
            "KUBERNETES_SERVICE_PORT_HTTPS": self.cluster.port,
        }
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind in ("configMapRef", "secretRef"):
                if ref := source.get(kind):
                    data = self.optional(
                        ref,
                        lambda r=ref, k=kind: self.cluster.data(  # type: ignore[misc]
                            "configmap" if k == "configMapRef" else "secret",
                            r["name"],
                            self.namespace,
                        ),
                    )
                    env |= {prefix + k: v.decode() for k, v in (data or {}).items()}
        for var in container.get("env") or []:
            if "value" in var or "valueFrom" not in var:
                env[var["name"]] = expand(var.get("value", ""), env)
                continue
            source = var["valueFrom"]
            if ref := source.get("fieldRef"):
                env[var["name"]] = field_value(self.pod, ref["fieldPath"])
            elif ref := source.get("secretKeyRef") or source.get("configMapKeyRef"):
                kind = "secret" if "secretKeyRef" in source else "configmap"
                data = self.optional(
                    ref,
                    lambda r=ref, k=kind: self.cluster.data(k, r["name"], self.namespace),  # type: ignore[misc]
                )
                if data is not None and ref["key"] in data:
                    env[var["name"]] = data[ref["key"]].decode()
                elif not ref.get("optional"):
                    raise PodError(
                        "CreateContainerConfigError",
                        f"couldn't find key {ref['key']} in {kind} {self.namespace}/{ref['name']}",
                    )
            else:
                raise PodError("CreateContainerConfigError", f"unsupported valueFrom {source}")
        return env

    def optional(self, ref: Obj, read: Any) -> dict[str, bytes] | None:
        try:
            return dict(read())
        except ApiException as err:
            if err.status == 404 and ref.get("optional"):
                return None
            if err.status == 404:
                raise PodError(
                    "CreateContainerConfigError", f"{ref['name']!r} not found in {self.namespace}"
                ) from err
            raise

    def volume_sources(self) -> dict[str, tuple[str, Path | None]]:
        """Volume name → ('bind', host dir) or ('tmpfs', None)."""
        out: dict[str, tuple[str, Path | None]] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.dir / "volumes" / name
            if claim := volume.get("persistentVolumeClaim"):
                out[name] = ("bind", self.cluster.claim_path(claim["claimName"], self.namespace))
            elif "emptyDir" in volume:
                if (volume["emptyDir"] or {}).get("medium") == "Memory":
                    out[name] = ("tmpfs", None)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    out[name] = ("bind", target)
            elif "hostPath" in volume:
                out[name] = ("bind", Path(volume["hostPath"]["path"]))
            elif any(k in volume for k in ("configMap", "secret", "downwardAPI", "projected")):
                self.write_files(volume, target)
                out[name] = ("bind", target)
            else:
                raise PodError("FailedMount", f"volume {name!r}: unsupported volume type")
        return out

    def write_files(self, volume: Obj, target: Path) -> None:
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        sources = (volume.get("projected") or {}).get("sources") or [volume]
        for source in sources:
            files: dict[str, bytes] = {}
            for kind, key in (("configMap", "configmap"), ("secret", "secret")):
                if ref := source.get(kind):
                    name = ref.get("name") or ref.get("secretName")
                    data = (
                        self.optional(
                            ref | {"name": name},
                            lambda n=name, k=key: self.cluster.data(k, n, self.namespace),  # type: ignore[misc]
                        )
                        or {}
                    )
                    items = ref.get("items")
                    files |= (
                        {i["path"]: data[i["key"]] for i in items if i["key"] in data}
                        if items
                        else data
                    )
            if api := source.get("downwardAPI"):
                for item in api.get("items") or []:
                    files[item["path"]] = field_value(
                        self.pod, item["fieldRef"]["fieldPath"]
                    ).encode()
            if token := source.get("serviceAccountToken"):
                seconds = int(token.get("expirationSeconds", 3600))
                files[token["path"]] = self.cluster.token(
                    self.pod, token.get("audience"), seconds
                ).encode()
            for path, content in files.items():
                (target / path).parent.mkdir(parents=True, exist_ok=True)
                (target / path).write_bytes(content)

    @property
    def tools(self) -> Path:
        """Commands the pods expect from their image that this machine may lack: `nslookup`
        (the training-operator's worker init container waits on it for the master) answers
        from /etc/hosts, which stands in for cluster DNS here."""
        tools = self.dir.parent.parent / "bin"
        nslookup = tools / "nslookup"
        if not nslookup.exists():
            tools.mkdir(parents=True, exist_ok=True)
            nslookup.write_text(NSLOOKUP)
            nslookup.chmod(0o755)
        return tools

    def hosts_file(self) -> Path:
        """The pod's /etc/hosts: its own name and every Service of its namespace → 127.0.0.1.
        Rewritten in place (the bind mount follows the inode) as Services come and go."""
        names = [self.name, *self.cluster.service_names(self.namespace)]
        path = self.dir / "hosts"
        text = "127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.0.1\t" + " ".join(names) + "\n"
        if not path.exists() or path.read_text() != text:
            with path.open("r+" if path.exists() else "w") as f:
                f.write(text)
                f.truncate()
        return path

    def launch_script(self, container: Obj, volumes: dict[str, tuple[str, Path | None]]) -> str:
        """Shell run inside `unshare --mount --uts`: hostname, mounts, then exec the command."""
        q = shlex.quote
        lines = ["set -e", f"hostname {q(self.name)}"]
        lines.append(f"mount --bind {q(str(self.hosts_file()))} /etc/hosts")
        for mount in container.get("volumeMounts") or []:
            kind, source = volumes[mount["name"]]
            dest = q(mount["mountPath"])
            lines.append(f"mkdir -p {dest}")
            if kind == "tmpfs":
                lines.append(f"mount -t tmpfs tmpfs {dest}")
            else:
                assert source is not None
                src = source / mount["subPath"] if mount.get("subPath") else source
                lines.append(f"mount --bind {q(str(src))} {dest}")
            if mount.get("readOnly"):
                lines.append(f"mount -o remount,bind,ro {dest}")
        workdir = container.get("workingDir") or "/"
        lines.append(f"cd {q(workdir)}")
        lines.append('exec "$@"')
        return "\n".join(lines)

    # -- running -------------------------------------------------------------------------

    def run_container(self, container: Obj, volumes: dict[str, tuple[str, Path | None]]) -> int:
        env = self.environment(container)
        argv = [
            expand(a, env) for a in (container.get("command") or []) + (container.get("args") or [])
        ]
        if not argv:
            raise PodError(
                "CreateContainerConfigError", f"container {container['name']!r} has no command"
            )
        script = self.launch_script(container, volumes)
        cmd = [
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            container["name"],
            *argv,
        ]
        with (self.dir / f"{container['name']}.log").open("ab") as out:
            self.process = subprocess.Popen(
                cmd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            code = self.process.wait()
        return 128 - code if code < 0 else code  # killed by a signal: 128 + signal number

    def tail(self, container: Obj) -> str:
        lines = (self.dir / f"{container['name']}.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-20:])

    def run(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._run()
        except PodError as err:
            log.warning("pod %s/%s: %s", self.namespace, self.name, err.message)
            self.write_status("Failed", err.reason, err.message)
        except Exception as err:
            log.exception("pod %s/%s failed to run", self.namespace, self.name)
            self.write_status("Failed", "ProcessNodeError", str(err))
        finally:
            self.done.set()

    def _run(self) -> None:
        spec = self.pod["spec"]
        self.write_status("Pending")
        volumes = self.volume_sources()
        for container in spec.get("initContainers") or []:
            if self.stopping.is_set():
                return
            started = now()
            self.init_statuses.append(self.running(container, started, ready=False))
            self.write_status("Pending")
            code = self.run_container(container, volumes)
            message = self.tail(container) if code else None
            self.init_statuses[-1] = self.terminated(container, started, code, message)
            log.info(
                "pod %s/%s: init container %s exited %d",
                self.namespace,
                self.name,
                container["name"],
                code,
            )
            if code != 0:
                self.write_status("Failed")
                return
        if self.stopping.is_set():
            return
        # One process per container, one after another would deadlock a sidecar; run them together.
        codes: dict[str, int] = {}
        started = now()
        self.statuses = [self.running(c, started, ready=True) for c in spec["containers"]]
        self.write_status("Running")
        threads = []
        for container in spec["containers"]:

            def go(c: Obj = container) -> None:
                codes[c["name"]] = self.run_container(c, volumes)

            threads.append(threading.Thread(target=go, daemon=True))
            threads[-1].start()
        for t in threads:
            t.join()
        self.statuses = [
            self.terminated(
                c, started, codes[c["name"]], self.tail(c) if codes[c["name"]] else None
            )
            for c in spec["containers"]
        ]
        for c in spec["containers"]:
            log.info(
                "pod %s/%s: container %s exited %d",
                self.namespace,
                self.name,
                c["name"],
                codes[c["name"]],
            )
        self.write_status("Succeeded" if not any(codes.values()) else "Failed")

    def stop(self, grace: int) -> None:
        """SIGTERM, wait up to the grace period, SIGKILL (the process group)."""
        self.stopping.set()
        proc = self.process
        if proc and proc.poll() is None:
            with_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            with_group(proc.pid, signal.SIGKILL)
        self.done.wait(timeout=30)


def with_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


# --- the node -----------------------------------------------------------------------------


class ProcessNode:
    def __init__(self, cluster: Cluster, name: str, state: Path) -> None:
        self.cluster, self.name, self.state = cluster, name, state
        self.runners: dict[str, PodRunner] = {}
        self.deleting: set[str] = set()
        self.lock = threading.Lock()

    def register(self) -> None:
        core = self.cluster.core
        try:
            core.create_node(node_object(self.name))
        except ApiException as err:
            if err.status != 409:
                raise
            core.patch_node(self.name, node_object(self.name))
        self.heartbeat()

    def heartbeat(self) -> None:
        self.cluster.core.patch_node_status(self.name, node_status(self.name))
        lease = {
            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": 40,
                "renewTime": micro_now(),
            },
        }
        try:
            self.cluster.coord.replace_namespaced_lease(
                self.name,
                "kube-node-lease",
                {
                    **lease,
                    "metadata": {
                        **lease["metadata"],
                        "resourceVersion": self.cluster.coord.read_namespaced_lease(
                            self.name, "kube-node-lease"
                        ).metadata.resource_version,
                    },
                },
            )
        except ApiException as err:
            if err.status != 404:
                raise
            self.cluster.coord.create_namespaced_lease("kube-node-lease", lease)

    def beat_forever(self) -> None:
        while True:
            time.sleep(5)
            try:
                self.heartbeat()
                for runner in list(self.runners.values()):
                    if not runner.done.is_set() and (runner.dir / "hosts").exists():
                        runner.hosts_file()
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
