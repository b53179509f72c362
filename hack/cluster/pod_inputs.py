"""What a container on the process node sees: its environment, its volumes at their mount
paths (bind mounts inside `unshare --mount --uts`), /etc/hosts standing in for cluster DNS."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from node_api import Cluster, PodError

from kubetune.render.metadata import Obj

NSLOOKUP = """#!/bin/sh
# nslookup on the process node: answers from /etc/hosts, which stands in for cluster DNS.
entry=$(getent hosts "$1") || { echo "** server can't find $1: NXDOMAIN"; exit 1; }
echo "Name: $1"
echo "Address: ${entry%% *}"
"""


# Every pod of the process node shares the host's network, where a real node gives each pod its
# own: two PyTorchJobs' masters would both bind the training-operator's port 23456. So each
# PyTorchJob gets a free host port of its own, the same for all its pods, in MASTER_PORT and
# PET_MASTER_PORT (the only variables that name it), and jobs run side by side as on a cluster.
MASTER_PORT_VARS = ("MASTER_PORT", "PET_MASTER_PORT")
_job_ports: dict[str, str] = {}
_job_ports_lock = threading.Lock()


def torch_extensions() -> str:
    """Where the pods' JIT-built torch extensions live: one folder per torch and Python version
    under the cache, shared by every pod of every run, as an image ships them built once.
    (Each pod has a HOME of its own, so torch's default would build DeepSpeed's CPU ops, about a
    minute each on 2 cores, in every pod of every DeepSpeed job; torch locks a build folder,
    so concurrent pods wait for the first one's build.)"""
    cache = Path(os.environ.get("KUBETUNE_CACHE") or Path.home() / ".cache" / "kubetune")
    key = f"torch-{version('torch')}-py{sys.version_info.major}{sys.version_info.minor}"
    return str(cache / "torch-extensions" / key)


def job_port(pod: Obj) -> str | None:
    """The host port standing in for the master port of the PyTorchJob that owns `pod`."""
    owner = next(
        (o for o in pod["metadata"].get("ownerReferences") or [] if o.get("kind") == "PyTorchJob"),
        None,
    )
    if owner is None:
        return None
    with _job_ports_lock:
        if owner["uid"] not in _job_ports:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                _job_ports[owner["uid"]] = str(probe.getsockname()[1])
        return _job_ports[owner["uid"]]


def field_value(pod: Obj, path: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
        return str((meta.get(m[1]) or {}).get(m[2], ""))
    simple: dict[str, str] = {
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


def image_env() -> dict[str, str]:
    """What the trainer image's ENV gives that this machine has elsewhere: llama.cpp's
    converter and reference vocabularies (/opt/llama.cpp in the image, KUBETUNE_LLAMA_CPP),
    where hack/llama-cpp.sh unpacked them for the installed llama-cpp-python, when it did (the
    per-pod HOME would hide ~/.cache/kubetune from the trainer's own lookup)."""
    try:
        from kubetune_trainer.runtime.llama_cpp import GgufError, llama_cpp_dir
    except ImportError:
        return {}
    try:
        return {"KUBETUNE_LLAMA_CPP": str(llama_cpp_dir())}
    except GgufError:
        return {}


class PodInputs:
    """Resolves one pod's env and volumes against the API server, into files under `dir`."""

    def __init__(self, cluster: Cluster, pod: Obj, dir: Path) -> None:
        self.cluster, self.pod, self.dir = cluster, pod, dir
        self.name, self.namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]

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
            "TORCH_EXTENSIONS_DIR": torch_extensions(),
            **image_env(),
        }
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind in ("configMapRef", "secretRef"):
                if ref := source.get(kind):
                    data = self.optional(
                        ref,
                        partial(
                            self.cluster.data,
                            "configmap" if kind == "configMapRef" else "secret",
                            ref["name"],
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
                    partial(self.cluster.data, kind, ref["name"], self.namespace),
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
        if any(var in env for var in MASTER_PORT_VARS) and (port := job_port(self.pod)):
            env |= {var: port for var in MASTER_PORT_VARS if var in env}
        return env

    def optional(self, ref: Obj, read: Callable[[], dict[str, bytes]]) -> dict[str, bytes] | None:
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
                            partial(self.cluster.data, key, name, self.namespace),
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

    def termination_file(self, container: Obj) -> Path:
        return self.dir / f"{container['name']}.termination-log"

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
        # The container's termination message file (Kubernetes' terminationMessagePath), one
        # host file per container; the bind target is created once on the host's /dev.
        message_path = q(container.get("terminationMessagePath") or "/dev/termination-log")
        message_file = self.termination_file(container)
        message_file.write_bytes(b"")
        lines.append(f"[ -e {message_path} ] || : > {message_path}")
        lines.append(f"mount --bind {q(str(message_file))} {message_path}")
        workdir = container.get("workingDir") or "/"
        lines.append(f"cd {q(workdir)}")
        lines.append('exec "$@"')
        return "\n".join(lines)
