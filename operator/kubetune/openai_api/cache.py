"""The watch cache: every API-made FineTuneJob in the cluster, kept current by one watch, so list
and retrieve are served from memory instead of an API-server call per request.

The API's ServiceAccount lists and watches FineTuneJobs labelled `api.kubetune.io/managed`
(read only); each read is still authorized per caller with a SubjectAccessReview, and every
write is still made with the caller's own token. A write's answer goes into the cache at once,
so a caller reads what it just wrote.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, cast

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kubetune.openai_api.jobs import MANAGED_LABEL
from kubetune_api.resource import GROUP, PLURAL, VERSION

Obj = dict[str, Any]
Key = tuple[str, str]
log = logging.getLogger("kubetune.api.cache")
WATCH_SECONDS = 300  # the API server ends a watch at about this age; the cache resumes it


def key_of(obj: Obj) -> Key:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def newer(old: Obj | None, new: Obj) -> bool:
    """Whether `new` is a later state than `old` (resourceVersions are compared only as
    integers, which every etcd-backed API server gives)."""
    if old is None:
        return True
    try:
        return int(new["metadata"]["resourceVersion"]) >= int(old["metadata"]["resourceVersion"])
    except (KeyError, ValueError):
        return True


def apply_event(jobs: dict[Key, Obj], kind: str, obj: Obj) -> None:
    """One watch event (ADDED, MODIFIED, DELETED; BOOKMARK changes nothing)."""
    if kind == "DELETED":
        jobs.pop(key_of(obj), None)
    elif kind in ("ADDED", "MODIFIED") and newer(jobs.get(key_of(obj)), obj):
        jobs[key_of(obj)] = obj


class JobCache:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.jobs: dict[Key, Obj] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.stopped = threading.Event()

    def start(self, timeout: float = 60) -> None:
        threading.Thread(target=self._run, name="watch-cache", daemon=True).start()
        if not self.ready.wait(timeout):
            raise RuntimeError("the FineTuneJob watch cache did not fill (can it list them?)")

    def get(self, namespace: str, name: str) -> Obj | None:
        with self.lock:
            return self.jobs.get((namespace, name))

    def list(self, namespace: str) -> list[Obj]:
        with self.lock:
            return [job for (ns, _), job in self.jobs.items() if ns == namespace]

    def remember(self, obj: Obj) -> None:
        with self.lock:
            apply_event(self.jobs, "MODIFIED", obj)

    def _run(self) -> None:
        selector = f"{MANAGED_LABEL}=true"
        while not self.stopped.is_set():
            try:
                listed = cast(
                    Obj,
                    self.api.list_cluster_custom_object(
                        GROUP, VERSION, PLURAL, label_selector=selector
                    ),
                )
                with self.lock:
                    self.jobs = {key_of(job): job for job in listed["items"]}
                self.ready.set()
                version = listed["metadata"]["resourceVersion"]
                while not self.stopped.is_set():
                    stream = watch.Watch().stream(
                        self.api.list_cluster_custom_object,
                        GROUP,
                        VERSION,
                        PLURAL,
                        label_selector=selector,
                        resource_version=version,
                        allow_watch_bookmarks=True,
                        timeout_seconds=WATCH_SECONDS,
                    )
                    for event in stream:
                        obj = event["object"]
                        version = obj["metadata"]["resourceVersion"]
                        with self.lock:
                            apply_event(self.jobs, event["type"], obj)
            except ApiException as err:
                if err.status != 410:  # 410: the version is too old to resume; list again
                    log.warning("watching FineTuneJobs: %s; listing again", err.reason)
                    self.stopped.wait(1)  # a pause before retrying a failing API server
            except Exception as err:  # a dropped connection must not end the cache
                log.warning("watching FineTuneJobs: %r; listing again", err)
                self.stopped.wait(1)
