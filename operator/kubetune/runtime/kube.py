"""The one layer that talks to the API server (kubernetes client, plain JSON).

Everything here is I/O; nothing decides. Children are created with a plain create (about a
quarter cheaper for the API server than server-side apply, which matters when a thousand jobs
arrive at once); one that already exists is converged with server-side apply under the field
manager `kubetune`. Names are deterministic, so a restarted operator never creates a second
PyTorchJob.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubetune.render.metadata import Obj
from kubetune.runtime import metrics
from kubetune_api.resource import API_VERSION, KIND, PLURAL

FIELD_MANAGER = "kubetune"
log = logging.getLogger(__name__)
# A LocalQueue's pending Workloads (Kueue's visibility API) are read at most this often: every
# queued job of that LocalQueue, and the timer that refreshes their positions, share one read.
PENDING_TTL_S = 5.0

# Every kind the operator touches, with its plural and scope: a static table instead of API
# discovery, and plain JSON instead of the dynamic client's object trees (cheaper in CPU and
# memory when a thousand jobs arrive at once).
ROUTES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Event"): ("events", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("kubeflow.org/v1", "PyTorchJob"): ("pytorchjobs", True),
    ("kueue.x-k8s.io/v1beta2", "Workload"): ("workloads", True),
    ("kueue.x-k8s.io/v1beta2", "LocalQueue"): ("localqueues", True),
    (API_VERSION, KIND): (PLURAL, True),
    ("kopf.dev/v1", "KopfPeering"): ("kopfpeerings", True),
    ("kopf.dev/v1", "ClusterKopfPeering"): ("clusterkopfpeerings", False),
}


class NamespaceTerminating(Exception):
    """The namespace is being deleted: nothing can be created in it, and nothing needs to be."""


class Rejected(Exception):
    """The API server refused to create an object: invalid (422), malformed (400), or forbidden
    (403: denied by an admission rule, over a quota). `message` is the API server's own."""

    def __init__(self, child: str, message: str) -> None:
        super().__init__(f"{child}: {message}")
        self.child = child
        self.message = message


def _api_message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except (ValueError, AttributeError):
        return str(err.body or err.reason)


def load_config() -> None:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    plural, namespaced = ROUTES[(api_version, kind)]
    url = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced:
        url += f"/namespaces/{quote(namespace or 'default')}"
    url += f"/{plural}"
    return url + (f"/{quote(name)}" if name else "")


@dataclass
class Kube:
    api: client.ApiClient
    _pending: dict[tuple[str, str], tuple[float, list[Obj] | None]] = field(default_factory=dict)
    _pending_lock: threading.Lock = field(default_factory=threading.Lock)
    _unanswered: set[int] = field(default_factory=set)
    """The visibility API's error statuses already logged (each once per process)."""

    @classmethod
    def connect(cls, connections: int = 16) -> Kube:
        """`connections`: kept open to the API server, one per handler thread. The client's
        default (5 per CPU: 10 on two cores) is below the operator's 16 threads, and a thread
        beyond it opens a new TLS connection for every request, then drops it."""
        load_config()
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = connections
        return cls(client.ApiClient(configuration))

    def _call(
        self,
        method: str,
        url: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> Obj:
        method, url, headers, body, post = self.api.param_serialize(
            method=method,
            resource_path=url,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method, url, header_params=headers, body=body, post_params=post
        )
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        assert response.data is not None
        return dict(json.loads(response.data))

    def create(self, obj: Obj) -> Obj | None:
        """Create the object; None when one of that name already exists."""
        meta = obj["metadata"]
        metrics.api_writes.labels(verb="create", kind=obj["kind"]).inc()
        try:
            return self._call(
                "POST", path(obj["apiVersion"], obj["kind"], meta.get("namespace")), obj
            )
        except ApiException as err:
            if err.status == 409:
                return None
            if err.status == 403 and "being terminated" in str(err.body or ""):
                raise NamespaceTerminating(meta.get("namespace")) from err
            if err.status in (400, 403, 422):
                raise Rejected(f"{obj['kind']}/{meta['name']}", _api_message(err)) from err
            raise

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply: creates or converges the object, never duplicates it."""
        meta = obj["metadata"]
        metrics.api_writes.labels(verb="apply", kind=obj["kind"]).inc()
        url = path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self._call(
            "PATCH",
            url,
            json.dumps(obj),
            "application/apply-patch+yaml",
            [("fieldManager", FIELD_MANAGER), ("force", "true")],
        )

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Obj | None:
        try:
            return self._call("GET", path(api_version, kind, namespace, name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def serves(self, api_version: str) -> bool:
        """Whether the API server serves this group/version (e.g. Kueue's is installed)."""
        try:
            self._call("GET", f"/apis/{api_version}")
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    def pending_workloads(self, namespace: str, local_queue: str) -> list[Obj] | None:
        """A LocalQueue's pending Workloads, from Kueue's visibility API (read at most every
        PENDING_TTL_S per LocalQueue); None when it does not answer — not served (404: no
        APIService, as on the local control plane), forbidden (403), unavailable (503), or the
        LocalQueue unknown to Kueue (404) — logged once per status, never raised."""
        key = (namespace, local_queue)
        with self._pending_lock:
            at, items = self._pending.get(key, (0.0, None))
            if time.monotonic() - at < PENDING_TTL_S:
                return items
        url = (
            f"/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/{quote(namespace)}"
            f"/localqueues/{quote(local_queue)}/pendingworkloads"
        )
        try:
            items = list(self._call("GET", url).get("items") or [])
        except ApiException as err:
            items = None
            if err.status not in self._unanswered:
                self._unanswered.add(err.status)
                log.info(
                    "Kueue's visibility API did not answer (%s %s: %s): queued jobs show no "
                    "position in their queue",
                    err.status,
                    url,
                    _api_message(err),
                )
        with self._pending_lock:
            self._pending[key] = (time.monotonic(), items)
            if len(self._pending) > 1024:  # LocalQueues come and go: keep the fresh ones
                cutoff = time.monotonic() - PENDING_TTL_S
                self._pending = {k: v for k, v in self._pending.items() if v[0] >= cutoff}
        return items

    def patch_status(self, name: str, namespace: str, status: Obj) -> None:
        metrics.api_writes.labels(verb="patch_status", kind=KIND).inc()
        url = path(API_VERSION, KIND, namespace, name) + "/status"
        self._call("PATCH", url, {"status": status}, "application/merge-patch+json")

    def patch(self, api_version: str, kind: str, name: str, namespace: str, body: Obj) -> None:
        metrics.api_writes.labels(verb="patch", kind=kind).inc()
        url = path(api_version, kind, namespace, name)
        self._call("PATCH", url, body, "application/merge-patch+json")
