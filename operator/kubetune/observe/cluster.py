"""A FineTuneJob and its pods on a cluster, through the user's kubeconfig (the kubernetes
client of the operator extra): the object, its changes (a watch from its resourceVersion), and
its pods' logs by rank.

A pod's rank is the node rank the training-operator gives it: the master 0, worker i i + 1
(its `training.kubeflow.org/replica-type` and `replica-index` labels). Following logs lists the
job's pods again whenever a stream ends, so a pod recreated after a restart, or a container
restarted in place, is followed too, each line once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubetune.observe.folder import FINAL
from kubetune.observe.logs import prefix, split_lines
from kubetune.render.metadata import JOB_LABEL
from kubetune_api.resource import GROUP, PLURAL, VERSION

REPLICA_TYPE = "training.kubeflow.org/replica-type"
REPLICA_INDEX = "training.kubeflow.org/replica-index"
MISSING = (
    "talking to a cluster needs the kubernetes client: install the operator extra "
    "(pip install 'kubetune[operator]')"
)


class ClusterError(RuntimeError):
    """No cluster to talk to, or no such FineTuneJob."""


def _clients(namespace: str | None) -> tuple[Any, Any, str]:
    try:
        from kubernetes import client, config
    except ImportError as missing:
        raise ClusterError(MISSING) from missing
    try:
        config.load_kube_config()
        _, context = config.list_kube_config_contexts()
    except Exception as problem:  # no kubeconfig, no current context
        raise ClusterError(f"no cluster: {problem} (set KUBECONFIG or a current context)") from None
    found = namespace or (context or {}).get("context", {}).get("namespace") or "default"
    return client.CustomObjectsApi(), client.CoreV1Api(), found


def _api_error(name: str, namespace: str, problem: Exception) -> ClusterError:
    if getattr(problem, "status", None) == 404:
        return ClusterError(f"FineTuneJob {namespace}/{name} not found")
    return ClusterError(f"FineTuneJob {namespace}/{name}: {problem}")


def get_job(name: str, namespace: str | None) -> dict[str, Any]:
    custom, _, ns = _clients(namespace)
    try:
        job: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    except Exception as problem:
        raise _api_error(name, ns, problem) from None
    job.get("metadata", {}).pop("managedFields", None)
    return job


def job_changes(name: str, namespace: str | None) -> Iterator[dict[str, Any]]:
    """The job now, then each new version of it from a watch that starts at its
    resourceVersion; when the server closes the watch it restarts from the last version seen,
    and when that version has expired (410 Gone) from a fresh GET."""
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    custom, _, ns = _clients(namespace)
    job = get_job(name, ns)
    yield job
    version = job["metadata"]["resourceVersion"]
    while (job.get("status") or {}).get("phase") not in FINAL:
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=version,
            timeout_seconds=300,
        )
        try:
            for event in stream:
                if event["type"] == "DELETED":
                    raise ClusterError(f"FineTuneJob {ns}/{name} was deleted")
                if event["type"] != "MODIFIED" and event["type"] != "ADDED":
                    continue  # a bookmark
                job = event["object"]
                job.get("metadata", {}).pop("managedFields", None)
                version = job["metadata"]["resourceVersion"]
                yield job
                if (job.get("status") or {}).get("phase") in FINAL:
                    return
        except ApiException as expired:
            if expired.status != 410:
                raise _api_error(name, ns, expired) from None
            fresh = get_job(name, ns)
            if fresh["metadata"]["resourceVersion"] != version:
                job = fresh
                yield job
            version = fresh["metadata"]["resourceVersion"]


def rank_of(pod: Any) -> int:
    labels = pod.metadata.labels or {}
    index = int(labels.get(REPLICA_INDEX, "0"))
    return index + 1 if labels.get(REPLICA_TYPE, "master").lower() == "worker" else index


def _pods(core: Any, name: str, ns: str) -> list[Any]:
    pods = core.list_namespaced_pod(ns, label_selector=f"{JOB_LABEL}={name}").items
    return sorted(pods, key=lambda p: (rank_of(p), p.metadata.creation_timestamp))


def _started(pod: Any, container: str) -> tuple[bool, int]:
    """(whether the container has started, its restart count)."""
    status = pod.status
    every = [*(status.init_container_statuses or []), *(status.container_statuses or [])]
    mine = next((s for s in every if s.name == container), None)
    if mine is None:
        return False, 0
    state = mine.state
    return bool(state and (state.running or state.terminated)), mine.restart_count or 0


def pod_lines(
    name: str, namespace: str | None, rank: int | None, container: str | None, follow: bool
) -> Iterator[str]:
    """Every chosen container's log lines, prefixed by rank; with `follow`, streamed from all
    pods at once until the job ends and every stream is drained. A stream the API server
    refuses (no kubelet answers for the node) ends the others' lines with a ClusterError."""
    _, core, ns = _clients(namespace)
    get_job(name, ns)  # a clear error for a job that does not exist
    containers = [container] if container else ["prepare", "pytorch"]
    # a line, None when a stream ended, or the error that ended it
    lines: queue.Queue[str | ClusterError | None] = queue.Queue()
    errors: list[ClusterError] = []
    streaming: set[tuple[str, str, int]] = set()  # (pod uid, container, restart count)

    def start_new() -> int:
        started = 0
        for pod in _pods(core, name, ns):
            if rank is not None and rank_of(pod) != rank:
                continue
            for box in containers:
                running, restarts = _started(pod, box)
                key = (pod.metadata.uid, box, restarts)
                if running and key not in streaming:
                    streaming.add(key)
                    threading.Thread(target=read_stream, args=(pod, box), daemon=True).start()
                    started += 1
        return started

    def read_stream(pod: Any, box: str) -> None:
        tag = prefix(rank_of(pod), box)
        buffer = ""
        try:
            response = core.read_namespaced_pod_log(
                pod.metadata.name, ns, container=box, follow=follow, _preload_content=False
            )
            for raw in response.stream():
                buffer += raw.decode(errors="replace")
                whole, buffer = split_lines(buffer)
                for line in whole:
                    lines.put(f"{tag} {line}")
            if buffer := buffer.rstrip("\r"):
                lines.put(f"{tag} {buffer}")
            lines.put(None)
        except Exception as problem:  # no kubelet to ask, a pod gone: said once, at the end
            reason = getattr(problem, "reason", None) or type(problem).__name__
            body = str(getattr(problem, "body", "") or problem)[:300]
            lines.put(ClusterError(f"pod {pod.metadata.name} container {box}: {reason}: {body}"))

    def finished() -> bool:
        return (get_job(name, ns).get("status") or {}).get("phase") in FINAL

    if not follow:  # one stream after another, by rank: prepare's lines, then training's
        for pod in _pods(core, name, ns):
            for box in containers:
                if (rank is None or rank_of(pod) == rank) and _started(pod, box)[0]:
                    read_stream(pod, box)
                    while (item := lines.get()) is not None:
                        if isinstance(item, ClusterError):
                            raise item
                        yield item
        return
    open_streams = start_new()
    while True:
        if open_streams == 0:
            if errors:
                raise errors[0]
            if not follow or finished():
                return
            open_streams = _wait_for_pods(core, name, ns, start_new, finished)
            if open_streams == 0:
                return
        item = lines.get()
        if isinstance(item, ClusterError):
            errors.append(item)
        if item is None or isinstance(item, ClusterError):
            open_streams -= 1
            if follow and open_streams == 0:
                open_streams = start_new()  # a restarted container, a recreated pod
            continue
        yield item


def _wait_for_pods(
    core: Any, name: str, ns: str, start_new: Callable[[], int], finished: Callable[[], bool]
) -> int:
    """Block on a watch of the job's pods until one of their containers starts (the first
    time, or again after a restart); returns the streams started, 0 once the job has ended."""
    from kubernetes import watch

    while True:
        for _ in watch.Watch().stream(
            core.list_namespaced_pod, ns, label_selector=f"{JOB_LABEL}={name}", timeout_seconds=60
        ):
            if started := start_new():
                return started
            if finished():
                return 0
        if finished():
            return 0
