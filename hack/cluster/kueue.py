"""Kueue on the local control plane, as a process beside the training-operator (optional:
`hack/local-cluster up --kueue`).

Installs Kueue's CRDs and webhook configurations from its module (copied next to the binary by
build-binaries.sh), with the webhooks pointed at the local process (`url:` 127.0.0.1 instead of
an in-cluster Service, which nothing routes here) and a CA made for them with openssl; starts
the manager with only the `kubeflow.org/pytorchjob` integration. See docs/local-cluster.md.

For kind (tests/e2e/kind/up.sh), `kind_manifests` adapts Kueue's own install (its
config/default kustomization, rendered) the same way: the image built here, only the
PyTorchJob integration and its webhooks; there Kueue runs in a pod with its own certificates
and its visibility API (docs/kind.md):

    python3 hack/cluster/kueue.py kind RENDERED.yaml IMAGE > install.yaml
    python3 hack/cluster/kueue.py kind-apiservices RENDERED.yaml > apiservices.yaml
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pids
import yaml

Obj = dict[str, Any]

NAMESPACE = "kueue-system"
GROUP = "kueue.x-k8s.io"  # the API group of its CRDs
COMMAND = "kueue"  # its binary's name, in its command line
# Without Kueue's internal cert management its manager reads a metrics certificate from this
# fixed path (cmd/kueue/main.go) and exits without one, even with metrics off.
METRICS_CERTS = Path("/etc/kueue/metrics/certs")
PORT = 9543  # the training-operator holds 9443 on all interfaces
WEBHOOK_CONFIGS = {
    "MutatingWebhookConfiguration": "kueue-mutating-webhook-configuration",
    "ValidatingWebhookConfiguration": "kueue-validating-webhook-configuration",
}
# Kueue's kustomization (config/components/crd) turns on the conversion webhook for these.
CONVERTED = ("localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters")
# Only the webhooks of what this manager serves: Kueue's own kinds and PyTorchJobs. The others
# (pods, Jobs, Deployments…) would fail every such create, as their integrations are off.
SERVED_PATHS = ("-kueue-x-k8s-io-", "-kubeflow-org-v1-pytorchjob")


def certificates(folder: Path) -> Path:
    """A CA and a serving certificate for 127.0.0.1 (made once, kept with the cluster)."""
    if (folder / "tls.crt").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
        "-subj", "/CN=kubetune-local-kueue-ca")  # fmt: skip
    run("req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "3650", "-extfile", "san.cnf")  # fmt: skip
    return folder


def _client_config(path: str, ca: bytes) -> Obj:
    return {"url": f"https://127.0.0.1:{PORT}{path}", "caBundle": base64.b64encode(ca).decode()}


def crds(manifests: Path, ca: bytes) -> list[Obj]:
    out = []
    for file in sorted(manifests.glob(f"{GROUP}_*.yaml")):
        crd = yaml.safe_load(file.read_text())
        if crd["spec"]["names"]["plural"] in CONVERTED:
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": _client_config("/convert", ca),
                    "conversionReviewVersions": ["v1"],
                },
            }
        out.append(crd)
    return out


def webhook_configurations(manifests: Path, ca: bytes) -> list[Obj]:
    out = []
    for doc in yaml.safe_load_all((manifests / "manifests.yaml").read_text()):
        if not doc:
            continue
        doc["metadata"] = {"name": WEBHOOK_CONFIGS[doc["kind"]]}
        doc["webhooks"] = [
            {**h, "clientConfig": _client_config(h["clientConfig"]["service"]["path"], ca)}
            for h in served(doc)["webhooks"]
        ]
        out.append(doc)
    return out


def served(webhook_configuration: Obj) -> Obj:
    """Only the webhooks of what this manager serves (SERVED_PATHS): Kueue's default install
    has every integration's, whose failurePolicy Fail would refuse pods, Jobs, Deployments…
    cluster-wide while the manager is not ready."""
    hooks = [
        h
        for h in webhook_configuration.get("webhooks") or []
        if any(s in h["clientConfig"]["service"]["path"] for s in SERVED_PATHS)
    ]
    return {**webhook_configuration, "webhooks": hooks}


def kind_manifests(rendered: str, image: str) -> list[Obj]:
    """Kueue's default install (`kubectl kustomize config/default` of its module) for a kind
    cluster: the manager image `image` (loaded into the node, never pulled), only the
    `kubeflow.org/pytorchjob` integration and the webhooks it serves, and small requests (one
    node of a shared machine). The rest (internal certificates, the visibility API server and
    its APIService, RBAC) as Kueue ships it."""
    out = []
    for doc in yaml.safe_load_all(rendered):
        if not doc or doc["kind"] == "APIService":  # apiservices(), once the server answers
            continue
        if doc["kind"] in WEBHOOK_CONFIGS:
            doc = served(doc)
        elif doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "kueue-manager-config":
            key = "controller_manager_config.yaml"
            config = yaml.safe_load(doc["data"][key])
            config["integrations"] = {"frameworks": ["kubeflow.org/pytorchjob"]}
            doc["data"][key] = yaml.safe_dump(config)
        elif doc["kind"] == "Deployment" and doc["metadata"]["name"] == "kueue-controller-manager":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if container["name"] == "manager":
                    container["image"] = image
                    container["imagePullPolicy"] = "Never"
                    container["resources"] = {
                        "requests": {"cpu": "50m", "memory": "128Mi"},
                        "limits": {"memory": "512Mi"},
                    }
        out.append(doc)
    return out


def apiservices(rendered: str) -> list[Obj]:
    """The APIServices of Kueue's visibility API, to apply once its Service answers: the API
    server keeps the connection its aggregator first opens to a Service's IP, and one opened
    before kube-proxy routes that IP goes wherever the node's default route leads (on this
    project's CI machines, a TLS-intercepting proxy that answers 404 to every request)."""
    return [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "APIService"]


def configuration(certs: Path) -> Obj:
    """The manager's Configuration (config.kueue.x-k8s.io/v1beta2): no leader election, no
    metrics or probe ports, webhooks on 127.0.0.1 with our certificates."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "webhook": {"port": PORT, "host": "127.0.0.1", "certDir": str(certs)},
        "metrics": {"bindAddress": "0"},
        "health": {"healthProbeBindAddress": "0"},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "integrations": {"frameworks": ["kubeflow.org/pytorchjob"]},
    }


def install_and_start(
    binary_dir: Path,
    state: Path,
    kubeconfig: Path,
    apply: Callable[[list[Obj]], None],
    wait_for: Callable[..., None],
    established: Callable[[str], None],
) -> None:
    """Install Kueue's CRDs and webhooks (server-side apply: idempotent) and start its
    manager, unless one runs; wait until its controllers and webhooks serve."""
    certs = certificates(state / "kueue-certs")
    ca = (certs / "ca.crt").read_bytes()
    manifests = binary_dir / "manifests"
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    definitions = crds(manifests, ca)
    apply(definitions)
    # The manager maps kinds through discovery at start and exits on one not served yet.
    for crd in definitions:
        established(f"crd/{crd['metadata']['name']}")
    pid_file, log_file = state / "kueue.pid", state / "kueue.log"
    if pids.alive(pid_file, COMMAND) is None:
        METRICS_CERTS.mkdir(parents=True, exist_ok=True)
        for name in ("tls.crt", "tls.key"):
            (METRICS_CERTS / name).write_bytes((certs / name).read_bytes())
        config = state / "kueue-config.yaml"
        config.write_text(yaml.safe_dump(configuration(certs)))
        cmd = [
            str(binary_dir / "kueue"),
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            "--feature-gates=VisibilityOnDemand=false",
        ]
        pids.start_detached(cmd, log_file, pid_file)

    # The webhooks go in once the manager serves them: a configuration that points at a port
    # nobody listens on would refuse every PyTorchJob meanwhile.
    def serving() -> bool:
        if pids.alive(pid_file, COMMAND) is None:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Kueue's manager exited; {log_file} ends with:\n{tail}")
        lines = log_file.read_bytes().splitlines()
        workers = any(b'"logger":"pytorchjob"' in x and b'"Starting workers"' in x for x in lines)
        return workers and any(b'"Serving webhook server"' in x for x in lines)

    wait_for("Kueue's PyTorchJob controller and webhook server", serving, timeout=120)
    apply(webhook_configurations(manifests, ca))


def delete_webhooks(kubectl: Callable[..., str]) -> None:
    """Delete Kueue's webhook configurations: without a manager serving them they would refuse
    every PyTorchJob."""
    for kind, name in WEBHOOK_CONFIGS.items():
        kubectl("delete", kind.lower(), name, "--ignore-not-found")


def remove(kubectl: Callable[..., str], pid_file: Path) -> int:
    """Take Kueue out of a running cluster, so that the API server no longer serves
    kueue.x-k8s.io, as on a cluster that never had Kueue: stop its manager, delete its webhook
    configurations, clear its objects' finalizers (no manager runs now to remove them, and
    they would hold the CRDs' deletion forever), then delete its CRDs. Returns their number."""
    if pid := pids.alive(pid_file, COMMAND):
        os.killpg(pid, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
    delete_webhooks(kubectl)
    crds = [n for n in kubectl("get", "crd", "-o", "name").split() if n.endswith(f".{GROUP}")]
    unfinal = '{"metadata":{"finalizers":null}}'
    for crd in crds:
        resource = crd.split("/", 1)[1]
        for item in json.loads(kubectl("get", resource, "-A", "-o", "json"))["items"]:
            meta = item["metadata"]
            if meta.get("finalizers"):
                where = ["-n", meta["namespace"]] if meta.get("namespace") else []
                kubectl("patch", resource, meta["name"], *where, "--type=merge", "-p", unfinal)
    if crds:
        kubectl("delete", "--wait=true", "--timeout=60s", *crds)
    return len(crds)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "kind":
        docs = kind_manifests(Path(sys.argv[2]).read_text(), sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "kind-apiservices":
        docs = apiservices(Path(sys.argv[2]).read_text())
    else:
        sys.exit("usage: kueue.py kind RENDERED.yaml IMAGE | kind-apiservices RENDERED.yaml")
    yaml.safe_dump_all(docs, sys.stdout)
