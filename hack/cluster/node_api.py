"""The process node's view of the API server: the objects a kubelet reads for a pod (claims,
ConfigMaps, Secrets, ServiceAccount tokens, Services) and the Node it registers."""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlparse

from kubernetes import client, config

from kubetune.render.metadata import Obj

LABEL = "kubetune.io/process-node"


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
        request = client.AuthenticationV1TokenRequest.model_validate(body)
        out = self.core.create_namespaced_service_account_token(sa, meta["namespace"], request)
        assert out.status is not None and out.status.token, "a created TokenRequest has a token"
        return out.status.token

    def service_names(self, namespace: str) -> list[str]:
        names: list[str] = []
        for svc in self.core.list_namespaced_service(namespace).items:
            assert svc.metadata is not None and svc.metadata.name is not None
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
