"""The one layer that talks to the API server (kubernetes client, server-side apply).

Everything here is I/O; nothing decides. Children are applied with server-side apply under
the field manager `kubetune`, so applying the same object twice changes nothing and a
restarted operator never creates a second PyTorchJob (names are deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from kubetune.api.job import API_VERSION, KIND
from kubetune.render.metadata import JOB_LABEL
from kubetune.runtime import metrics

Obj = dict[str, Any]
FIELD_MANAGER = "kubetune"


def load_config() -> None:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


@dataclass
class Kube:
    dynamic: DynamicClient
    _resources: dict[tuple[str, str], Any] = field(default_factory=dict)

    @classmethod
    def connect(cls) -> Kube:
        load_config()
        return cls(DynamicClient(client.ApiClient()))

    def _resource(self, api_version: str, kind: str) -> Any:
        # Discovery lookups are slow in the dynamic client; the set of kinds used is tiny.
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self.dynamic.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    def apply(self, obj: Obj) -> Obj:
        resource = self._resource(obj["apiVersion"], obj["kind"])
        metrics.api_writes.labels(verb="apply").inc()
        applied = resource.server_side_apply(
            body=obj,
            name=obj["metadata"]["name"],
            namespace=obj["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        return dict(applied.to_dict())

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Obj | None:
        try:
            return dict(
                self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
            )
        except NotFoundError:
            return None

    def pods_of(self, job: str, namespace: str) -> list[Obj]:
        pods = self._resource("v1", "Pod").get(
            namespace=namespace, label_selector=f"{JOB_LABEL}={job}"
        )
        return [dict(p) for p in pods.to_dict()["items"]]

    def patch_status(self, name: str, namespace: str, status: Obj) -> None:
        resource = self._resource(API_VERSION, KIND)
        metrics.api_writes.labels(verb="patch_status").inc()
        resource.status.patch(
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )

    def patch(self, api_version: str, kind: str, name: str, namespace: str, body: Obj) -> None:
        metrics.api_writes.labels(verb="patch").inc()
        self._resource(api_version, kind).patch(
            body=body, name=name, namespace=namespace, content_type="application/merge-patch+json"
        )
