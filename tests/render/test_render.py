"""What rendering promises, case by case (golden files show the whole output)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.api import parse_job
from kubetune.render import render
from kubetune.render.pod import CONTAINER, PORT_NAME
from kubetune.render.rbac import reporter_access
from tests.support.factories import make_job
from tests.support.golden import by_kind


def objects(**kw: Any) -> list[dict[str, Any]]:
    return render(parse_job(make_job(**kw)))


def pytorchjob(**kw: Any) -> dict[str, Any]:
    return by_kind(objects(**kw), "PyTorchJob")[0]


def pod_spec(job: dict[str, Any], replica: str = "Master") -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_single_node_has_only_a_master_and_rwo_claim() -> None:
    objs = objects()
    job = by_kind(objs, "PyTorchJob")[0]
    assert list(job["spec"]["pytorchReplicaSpecs"]) == ["Master"]
    assert by_kind(objs, "PersistentVolumeClaim")[0]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_multi_node_gets_workers_rwx_and_gpu_requests() -> None:
    objs = objects(nodes=3, gpus=8)
    job = by_kind(objs, "PyTorchJob")[0]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 2
    assert job["spec"]["nprocPerNode"] == "8"
    assert by_kind(objs, "PersistentVolumeClaim")[0]["spec"]["accessModes"] == ["ReadWriteMany"]
    container = pod_spec(job, "Worker")["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert container["name"] == CONTAINER and container["ports"][0]["name"] == PORT_NAME


def test_prepare_runs_on_every_replica_without_gpus() -> None:
    job = pytorchjob(nodes=2, gpus=4, **{"spec.resources.cpu": 8})
    for replica in ("Master", "Worker"):
        (prepare,) = pod_spec(job, replica)["initContainers"]
        assert prepare["name"] == "prepare" and "prepare" in prepare["command"]
        assert "nvidia.com/gpu" not in prepare["resources"]["limits"]
        assert prepare["resources"]["limits"]["cpu"] == "8"


def test_torchrun_takes_topology_from_the_training_operator() -> None:
    command = pod_spec(pytorchjob(nodes=2, gpus=8))["containers"][0]["command"]
    assert command[0] == "torchrun"
    assert not any(
        a.startswith(("--nnodes", "--nproc", "--node-rank", "--master")) for a in command
    )
    assert command[-4:] == [
        "-m",
        "kubetune_trainer.train",
        "--config",
        "/etc/kubetune/trainer.yaml",
    ]


def test_custom_entrypoint_runs_through_the_path_resolver() -> None:
    objs = objects(**{"spec.entrypoint": {"module": "team.train", "args": ["--x", "1"]}})
    command = pod_spec(by_kind(objs, "PyTorchJob")[0])["containers"][0]["command"]
    assert command[-4:] == [
        "-m",
        "kubetune_trainer.custom",
        "--config",
        "/etc/kubetune/trainer.yaml",
    ]
    config = by_kind(objs, "ConfigMap")[0]["data"]["trainer.yaml"]
    assert "module: team.train" in config


def test_existing_claim_creates_no_pvc() -> None:
    objs = objects(**{"spec.storage": {"existingClaim": "shared-ws"}})
    assert not by_kind(objs, "PersistentVolumeClaim")
    volumes = pod_spec(by_kind(objs, "PyTorchJob")[0])["volumes"]
    assert {"name": "workspace", "persistentVolumeClaim": {"claimName": "shared-ws"}} in volumes


def test_keep_on_delete_claim_is_not_owned() -> None:
    (pvc,) = by_kind(objects(**{"spec.storage.keepOnDelete": True}), "PersistentVolumeClaim")
    assert "ownerReferences" not in pvc["metadata"]
    assert pvc["metadata"]["annotations"]["kubetune.io/keep-on-delete"] == "true"


def test_every_other_child_is_owned_by_the_job() -> None:
    for obj in objects():
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref["kind"] == "FineTuneJob" and ref["controller"] is True


def test_pvc_sources_mount_their_claims_read_only() -> None:
    job = pytorchjob(**{"spec.dataset.sources[0].source": "pvc://corpora/chat/train.jsonl"})
    spec = pod_spec(job)
    assert {
        "name": "input-0",
        "persistentVolumeClaim": {"claimName": "corpora", "readOnly": True},
    } in spec["volumes"]
    mounts = spec["containers"][0]["volumeMounts"]
    assert {"name": "input-0", "mountPath": "/mnt/pvc/corpora", "readOnly": True} in mounts


def test_secrets_travel_only_as_references() -> None:
    objs = objects(
        **{
            "spec.model.tokenSecretRef": {"name": "hf", "key": "token"},
            "spec.tracking.wandb": {"project": "p", "apiKeySecretRef": {"name": "wb", "key": "k"}},
        }
    )
    env = env_of(pod_spec(by_kind(objs, "PyTorchJob")[0])["containers"][0])
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
    assert env["WANDB_API_KEY"] == {"secretKeyRef": {"name": "wb", "key": "k"}}
    config = by_kind(objs, "ConfigMap")[0]["data"]["trainer.yaml"]
    assert "HF_TOKEN" not in config and "WANDB_API_KEY" not in config


def test_restricted_pod_security() -> None:
    spec = pod_spec(pytorchjob())
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["initContainers"] + spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}


def test_cpu_jobs_use_deepspeed_on_cpu_and_no_gpus() -> None:
    container = pod_spec(pytorchjob(**{"spec.distributed.strategy": "deepspeed-zero2"}))[
        "containers"
    ][0]
    assert env_of(container)["DS_ACCELERATOR"] == "cpu"
    assert "resources" not in container or "nvidia.com/gpu" not in json.dumps(
        container["resources"]
    )


def test_run_policy_and_gang_scheduling() -> None:
    job = pytorchjob(
        nodes=2,
        gpus=8,
        **{
            "spec.runPolicy": {
                "suspend": True,
                "backoffLimit": 1,
                "gangScheduling": {"queue": "gpu"},
                "ttlSecondsAfterFinished": 60,
            },
        },
    )
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]
    policy = job["spec"]["runPolicy"]
    assert policy["suspend"] is True and policy["backoffLimit"] == 1
    assert policy["schedulingPolicy"] == {"minAvailable": 2, "queue": "gpu"}
    assert policy["ttlSecondsAfterFinished"] == 60


@pytest.mark.parametrize(
    ("scheduling", "labels", "suspended"),
    [
        ({}, {}, False),
        ({"queue": "team-q"}, {"kueue.x-k8s.io/queue-name": "team-q"}, True),
        (
            {"queue": "team-q", "priorityClass": "high"},
            {"kueue.x-k8s.io/queue-name": "team-q", "kueue.x-k8s.io/priority-class": "high"},
            True,
        ),
    ],
)
def test_kueue_labels_and_created_suspended(
    scheduling: dict[str, str], labels: dict[str, str], suspended: bool
) -> None:
    """A queued job is created suspended with Kueue's labels: Kueue unsuspends it on admission."""
    job = pytorchjob(nodes=1, gpus=1, **{"spec.scheduling": scheduling})
    kueue = {k: v for k, v in job["metadata"]["labels"].items() if k.startswith("kueue.x-k8s.io/")}
    assert kueue == labels
    assert job["spec"]["runPolicy"]["suspend"] is suspended


def test_from_job_resolves_to_the_previous_stage_output() -> None:
    objs = objects(
        **{"spec.model": {"fromJob": {"name": "stage1", "artifact": "latestCheckpoint"}}}
    )
    config = by_kind(objs, "ConfigMap")[0]["data"]["trainer.yaml"]
    assert "model: /workspace/jobs/stage1/checkpoints" in config


def test_progress_reporter_is_bound_to_the_reporters_cluster_role() -> None:
    """No Role per job: the shared ClusterRole grants `patch` on finetunejobs/status in the
    namespace, and the admission policy keeps the account to its own job, by its name
    (tests/cluster/test_operator.py proves both on the real API server)."""
    objs = objects()
    assert not by_kind(objs, "Role")
    (account,) = by_kind(objs, "ServiceAccount")
    (binding,) = by_kind(objs, "RoleBinding")
    assert account["metadata"]["name"] == "job.kubetune-reporter"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "kubetune-reporter",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "job.kubetune-reporter", "namespace": "team-a"}
    ]
    (pod,) = [r["template"]["spec"] for r in pytorchjob()["spec"]["pytorchReplicaSpecs"].values()]
    assert pod["serviceAccountName"] == "job.kubetune-reporter"


def test_the_reporter_policy_maps_an_account_to_exactly_one_job() -> None:
    """The policy's rule, read as data: a reporter account's username equals the one built from
    the request's namespace and name, the job names being DNS-1035 labels (no dots)."""
    (_, policy, binding) = reporter_access()
    (condition,) = policy["spec"]["matchConditions"]
    assert ".endsWith('.kubetune-reporter')" in condition["expression"]
    (rule,) = policy["spec"]["validations"]
    assert rule["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:' + request.namespace + ':' + "
        "request.name + '.kubetune-reporter'"
    )
    assert binding["spec"] == {"policyName": "kubetune-reporter", "validationActions": ["Deny"]}
