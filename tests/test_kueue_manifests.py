"""hack/cluster/kueue.py's adaptation of Kueue's own install for kind (tests/e2e/kind/up.sh),
on a few documents shaped as `kubectl kustomize config/default` of Kueue v0.17.0 renders
them (the real rendering is installed by the kind tier)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import yaml

from tests.support.factories import REPO


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "hack" / "cluster" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # kueue.py imports its neighbour pids.py
    spec.loader.exec_module(module)
    return module


load("pids")
kueue = load("kueue")


def hook(name: str, path: str) -> dict[str, object]:
    return {
        "name": name,
        "failurePolicy": "Fail",
        "clientConfig": {"service": {"name": "kueue-webhook-service", "path": path}},
    }


RENDERED = yaml.safe_dump_all(
    [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kueue-manager-config", "namespace": "kueue-system"},
            "data": {
                "controller_manager_config.yaml": yaml.safe_dump(
                    {
                        "kind": "Configuration",
                        "webhook": {"port": 9443},
                        "integrations": {
                            "frameworks": ["batch/job", "pod", "kubeflow.org/pytorchjob"]
                        },
                    }
                )
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "kueue-controller-manager", "namespace": "kueue-system"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "manager",
                                "image": "us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue:main",
                                "imagePullPolicy": "Always",
                                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                            }
                        ]
                    }
                }
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "kueue-mutating-webhook-configuration"},
            "webhooks": [
                hook("mpod.kb.io", "/mutate--v1-pod"),
                hook("mpytorchjob.kb.io", "/mutate-kubeflow-org-v1-pytorchjob"),
                hook("mworkload.kb.io", "/mutate-kueue-x-k8s-io-v1beta2-workload"),
            ],
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta2.visibility.kueue.x-k8s.io"},
            "spec": {"group": "visibility.kueue.x-k8s.io", "version": "v1beta2"},
        },
    ]
)


def test_kind_gets_kueues_install_with_the_local_image_and_only_pytorchjobs() -> None:
    docs = {d["kind"]: d for d in kueue.kind_manifests(RENDERED, "docker.io/kubetune-kind/kueue:v")}
    config = yaml.safe_load(docs["ConfigMap"]["data"]["controller_manager_config.yaml"])
    assert config["integrations"] == {"frameworks": ["kubeflow.org/pytorchjob"]}
    assert config["webhook"] == {"port": 9443}  # the rest as Kueue ships it
    (manager,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert manager["image"] == "docker.io/kubetune-kind/kueue:v"
    assert manager["imagePullPolicy"] == "Never"
    assert manager["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}
    hooks = [h["name"] for h in docs["MutatingWebhookConfiguration"]["webhooks"]]
    assert hooks == ["mpytorchjob.kb.io", "mworkload.kb.io"]  # no cluster-wide pod webhook
    assert "APIService" not in docs  # applied apart, once the visibility server answers
    assert [d["metadata"]["name"] for d in kueue.apiservices(RENDERED)] == [
        "v1beta2.visibility.kueue.x-k8s.io"
    ]
