"""The reconciler in memory: what gets created, converged, refused, suspended or left alone.

A named-case table with fluent builders (the shape of Kubeflow Trainer's controller tests),
over the in-memory cluster and watches of tests/runtime/memory.py (mocks, so the cases run in
milliseconds; tests/cluster/ proves the same wiring against a real kube-apiserver and
training-operator).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kubetune.runtime.kube import NamespaceTerminating
from tests.support.memory_cluster import CHILDREN, World


@dataclass
class Case:
    name: str
    world: Callable[[], World]
    writes: list[str]
    phase: str | None = None
    reason: str | None = None
    raises: type[Exception] | None = None


def created(*children: str) -> list[str]:
    return [f"create {c}" for c in children]


CASES = [
    Case(
        "first creation: every child, the PyTorchJob last",
        World,
        created(*CHILDREN),
        "Pending",
        "Starting",
    ),
    Case(
        "the watch lags behind our own create: asked, not created again",
        lambda: World().seen_before().with_pytorchjob(in_watch=False),
        [],
        "Training",
    ),
    Case(
        "a child exists (interrupted create): converged, the rest created",
        lambda: World().with_child("ConfigMap", "job-trainer-config"),
        [*created(*CHILDREN[:2]), "apply ConfigMap/job-trainer-config", *created(*CHILDREN[2:])],
        "Pending",
    ),
    Case(
        "the PyTorchJob exists though the watch has none: nothing more touched",
        lambda: World().with_pytorchjob(in_watch=False),
        created(*CHILDREN),
        "Training",
    ),
    Case(
        "a spec change after the start is refused, the PyTorchJob untouched",
        lambda: World().with_spec(**{"spec.training.maxSteps": 7}).seen_before().with_pytorchjob(),
        [],
        "Training",
    ),
    Case(
        "suspend: the PyTorchJob is suspended",
        lambda: (
            World().with_spec(**{"spec.runPolicy.suspend": True}).seen_before().with_pytorchjob()
        ),
        ["patch PyTorchJob/job {'runPolicy': {'suspend': True}}"],
        "Suspended",
    ),
    Case(
        "resume: the PyTorchJob runs again",
        lambda: World().seen_before("Suspended", "Suspended").with_pytorchjob(suspended=True),
        ["patch PyTorchJob/job {'runPolicy': {'suspend': False}}"],
        "Training",
    ),
    Case(
        "a failed prepare fails the job and stops its PyTorchJob",
        lambda: World().seen_before().with_pytorchjob().with_failed_prepare(),
        ["patch PyTorchJob/job {'runPolicy': {'suspend': True}}"],
        "Failed",
        "PrepareFailed",
    ),
    Case("a finished job is never recreated", lambda: World().finished(), [], "Succeeded"),
    Case(
        "an upstream stage still running: nothing created, the wait named",
        lambda: World().with_upstream("Training"),
        [],
        "Pending",
        "WaitingForJob",
    ),
    Case(
        "the upstream stage succeeded: the children are created",
        lambda: World().with_upstream("Succeeded"),
        created(*CHILDREN),
        "Pending",
        "Starting",
    ),
    Case(
        "an invalid spec: nothing created, the job Failed naming the field",
        lambda: World().with_spec(**{"spec.distributed.nodes": 0}),
        [],
        "Failed",
        "InvalidSpec",
    ),
    Case(
        "a terminating namespace: stops at the first create",
        lambda: World().terminating(),
        created(CHILDREN[0]),
        raises=NamespaceTerminating,
    ),
    Case(
        "a child the API server finds invalid: the job fails, nothing after it created",
        lambda: World().rejecting("ConfigMap"),
        created(*CHILDREN[:2]),
        "Failed",
        "ChildRejected",
    ),
    Case(
        "a child an admission rule denies: the job fails",
        lambda: World().rejecting(
            "PersistentVolumeClaim",
            'persistentvolumeclaims "job-workspace" is forbidden: ValidatingAdmissionPolicy '
            "'no-big-claims' with binding 'b' denied request: too big",
        ),
        created(CHILDREN[0]),
        "Failed",
        "ChildRejected",
    ),
    Case(
        "a child over a quota: named and waiting (a later try may pass)",
        lambda: World().rejecting(
            "PersistentVolumeClaim",
            'persistentvolumeclaims "job-workspace" is forbidden: exceeded quota: q',
        ),
        created(CHILDREN[0]),
        "Pending",
        "ChildRejected",
    ),
    Case(
        "a job that failed on a refused child is not tried again",
        lambda: World().seen_before("Failed", "ChildRejected").rejecting("ConfigMap"),
        [],
        "Failed",
        "ChildRejected",
    ),
    Case(
        "the training-operator cannot create an invalid pod: failed, the PyTorchJob stopped",
        lambda: (
            World()
            .seen_before()
            .with_pytorchjob()
            .with_warning(
                "FailedCreatePod",
                'Pod "job-master-0" is invalid: metadata.labels: Invalid value: "x": must be no '
                "more than 63 characters",
            )
        ),
        ["patch PyTorchJob/job {'runPolicy': {'suspend': True}}"],
        "Failed",
        "PodsRejected",
    ),
    Case(
        "pods over a quota: named, the PyTorchJob keeps trying",
        lambda: (
            World()
            .seen_before()
            .with_pytorchjob()
            .with_warning("FailedCreatePod", 'pods "job-master-0" is forbidden: exceeded quota: q')
        ),
        [],
        "Pending",
        "PodsRejected",
    ),
    Case(
        "the training-operator's cache lags behind a pod it made: not a refusal",
        lambda: (
            World()
            .seen_before()
            .with_pytorchjob()
            .with_warning("FailedCreatePod", 'pods "job-master-0" already exists')
        ),
        [],
        "Training",
    ),
    Case(
        # the API server refuses such a job (the CRD's rule); one stored before that rule
        # existed fails as invalid, naming the field
        "a stage that starts from itself: failed as invalid, nothing created",
        lambda: World().with_spec(**{"spec.model": {"fromJob": {"name": "job"}}}),
        [],
        "Failed",
        "InvalidSpec",
    ),
    Case(
        "three stages in a circle: failed, the cycle named, nothing created",
        lambda: World().with_upstream("Pending", starts_from="dpo").with_stage("dpo", "job"),
        [],
        "Failed",
        "DependencyCycle",
    ),
    Case(
        "a chain that ends at a missing stage is a wait, not a cycle",
        lambda: World().with_upstream("Pending", starts_from="base"),
        [],
        "Pending",
        "WaitingForJob",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reconcile(case: Case) -> None:
    world = case.world()
    if case.raises is not None:
        with pytest.raises(case.raises):
            world.reconcile()
        assert world.cluster.writes() == case.writes
        return
    outcome = world.reconcile()
    assert world.cluster.writes() == case.writes
    assert outcome.phase == case.phase, outcome.status
    if case.reason is not None:
        current = next(c for c in outcome.status["conditions"] if c["type"] == case.phase)
        assert current["reason"] == case.reason, current


def test_a_refused_change_is_named_on_the_status() -> None:
    world = World().with_spec(**{"spec.training.maxSteps": 7}).seen_before().with_pytorchjob()
    refused = next(
        c for c in world.reconcile().status["conditions"] if c["type"] == "SpecChangeRefused"
    )
    assert (
        refused["status"] == "True" and "spec changed after training started" in refused["message"]
    )


def test_the_status_is_written_only_when_it_changed() -> None:
    world = World().seen_before().with_pytorchjob()
    first = world.reconcile()
    assert first.status_written
    world.job["status"] = first.status
    world.cluster.calls.clear()
    again = world.reconcile()
    assert not again.status_written and world.cluster.calls == []


def test_a_failed_job_is_stopped_before_its_status_says_failed() -> None:
    """Whoever reads `Failed` (kubectl wait, a CI pipeline) finds the PyTorchJob already
    suspended: the run policy is enforced before the status is written."""
    world = World().seen_before().with_pytorchjob().with_failed_prepare()
    world.reconcile()
    assert world.cluster.calls == [
        "patch PyTorchJob/job {'runPolicy': {'suspend': True}}",
        "status job",
    ]


def test_the_whole_table_runs_in_milliseconds() -> None:
    """Reconcile is pure apart from its writes: the whole table, every case reconciled to the
    phase it expects, takes well under a second (no I/O, no waits hide in it)."""
    worlds = [(case, case.world()) for case in CASES if case.raises is None]
    started = time.perf_counter()
    outcomes = [(case, world.reconcile()) for case, world in worlds]
    elapsed = time.perf_counter() - started
    assert [o.phase for _, o in outcomes] == [case.phase for case, _ in outcomes]
    assert elapsed < 2.0, f"{len(CASES)} reconciles took {elapsed:.2f} s"


def test_a_cycle_names_its_stages() -> None:
    world = World().with_upstream("Pending", starts_from="dpo").with_stage("dpo", "job")
    failed = next(c for c in world.reconcile().status["conditions"] if c["type"] == "Failed")
    assert "job → sft → dpo → job" in failed["message"]


def test_a_refused_pod_carries_the_api_servers_message() -> None:
    message = 'Pod "job-master-0" is invalid: spec.containers[0].resources.requests: Invalid'
    world = World().seen_before().with_pytorchjob().with_warning("FailedCreatePod", message)
    failed = next(c for c in world.reconcile().status["conditions"] if c["type"] == "Failed")
    assert failed["message"].endswith(message) and "Error creating" not in failed["message"]


def test_a_stage_that_uploaded_its_outputs_is_read_from_the_bucket_it_used() -> None:
    """The upstream's `status.outputs.uri` and its output connection reach the trainer config,
    and its credentials the pods, as secretKeyRefs; a stage that uploaded nothing adds none."""
    import yaml

    world = World().with_upstream("Succeeded")
    upstream = world.cluster.objects[("FineTuneJob", "sft")]
    upstream["status"]["outputs"] = {"uri": "s3://runs/sft/"}
    upstream["spec"] = {
        "s3": {"endpoint": "https://job-wide:9000"},
        "output": {
            "uri": "s3://runs/sft/",
            "s3": {"endpoint": "https://minio:9000", "credentials": {"name": "sft-out"}},
        },
    }
    world.reconcile()
    config_map = world.cluster.objects[("ConfigMap", "job-trainer-config")]
    config = yaml.safe_load(config_map["data"]["trainer.yaml"])
    assert config["upstreamOutputs"]["uri"] == "s3://runs/sft/"
    assert config["upstreamOutputs"]["s3"]["endpoint"] == "https://minio:9000"
    pytorchjob = world.cluster.objects[("PyTorchJob", "job")]
    pod = pytorchjob["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    for container in [*pod["initContainers"], *pod["containers"]]:
        env = {e["name"]: e for e in container["env"]}
        ref = env["KUBETUNE_S3_UPSTREAM_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "sft-out", "key": "AWS_SECRET_ACCESS_KEY"}

    plain = World().with_upstream("Succeeded")
    plain.reconcile()
    config = yaml.safe_load(
        plain.cluster.objects[("ConfigMap", "job-trainer-config")]["data"]["trainer.yaml"]
    )
    assert "upstreamOutputs" not in config or config["upstreamOutputs"] is None
