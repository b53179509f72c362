"""The pod template every replica shares: `prepare` init container, `pytorch` container.

The training-operator injects MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and the PET_*
variables into `containers` (never `initContainers`); torchrun reads PET_* as its flag
defaults, so the command names no topology of its own.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from kubetune.api.cluster_rules import MULTUS_ANNOTATION
from kubetune.api.job import FineTuneJob
from kubetune.render.fabric import nccl_env
from kubetune.render.layout import Layout
from kubetune.render.metadata import Obj, labels
from kubetune.render.names import config_map_name, service_account_name
from kubetune.render.s3 import s3_ca_volumes, s3_env
from kubetune.render.settings import RenderSettings
from kubetune.render.storage import workspace_claim
from kubetune_api.s3_spec import UpstreamOutputs

CONTAINER = "pytorch"  # the training-operator requires this name
PORT_NAME = "pytorchjob-port"
PORT = 23456
CONFIG_FILE = "trainer.yaml"
UID = 1000


def secret_env(name: str, secret: str, key: str) -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def render_env(
    job: FineTuneJob,
    layout: Layout,
    settings: RenderSettings,
    upstream: UpstreamOutputs | None = None,
) -> list[Obj]:
    """Environment of both containers. Credentials only ever as secretKeyRef."""
    spec = job.spec
    env: list[Obj] = [
        {"name": "KUBETUNE_CONFIG", "value": f"{settings.config_mount}/{CONFIG_FILE}"},
        {"name": "KUBETUNE_JOB_NAME", "value": job.name},
        {
            "name": "KUBETUNE_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "KUBETUNE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "HF_HOME", "value": str(layout.cache() / "huggingface")},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
    ]
    if spec.model.tokenSecretRef:
        ref = spec.model.tokenSecretRef
        env.append(secret_env("HF_TOKEN", ref.name, ref.key))
    for i, source in enumerate(spec.dataset.all_sources if spec.dataset else []):
        if source.tokenSecretRef and source.tokenSecretRef != spec.model.tokenSecretRef:
            ref = source.tokenSecretRef
            env.append(secret_env(f"KUBETUNE_DATASET_{i}_TOKEN", ref.name, ref.key))
    env += s3_env(job, upstream)
    wandb = spec.tracking.wandb
    if wandb and wandb.apiKeySecretRef:  # project, mode, … come from the trainer config
        ref = wandb.apiKeySecretRef
        env.append(secret_env("WANDB_API_KEY", ref.name, ref.key))
    if spec.distributed.gpusPerNode == 0:
        env.append({"name": "DS_ACCELERATOR", "value": "cpu"})  # DeepSpeed on CPU
    env += nccl_env(job)
    for var in spec.env:
        env.append(var.to_wire())
    return env


def training_command(job: FineTuneJob, settings: RenderSettings) -> list[str]:
    """torchrun with the topology from PET_*; the built-in trainer or the user's code."""
    spec = job.spec
    cmd = [
        "torchrun",
        f"--rdzv-conf=timeout={spec.distributed.rendezvousTimeoutSeconds}",
        "--max-restarts=0",  # restarts are the PyTorchJob's, so a new pod resumes from a checkpoint
    ]
    # A custom entrypoint runs through kubetune_trainer.custom, which resolves the model, data
    # and output paths into KUBETUNE_* variables and then hands over to the user's code.
    module = "kubetune_trainer.train" if spec.entrypoint is None else "kubetune_trainer.custom"
    return [*cmd, "-m", module, "--config", f"{settings.config_mount}/{CONFIG_FILE}"]


def resources(job: FineTuneJob, *, gpus: bool) -> Obj:
    res = job.spec.resources
    amounts: dict[str, str] = {}
    if res.cpu is not None:
        amounts["cpu"] = str(res.cpu)
    if res.memory is not None:
        amounts["memory"] = str(res.memory)
    if gpus and job.spec.distributed.gpusPerNode > 0:
        amounts[res.gpuResourceName] = str(job.spec.distributed.gpusPerNode)
    if gpus:  # the devices training uses (RDMA); `prepare` needs none of them
        amounts |= {r.name: str(r.count) for r in res.extendedResources}
    if not amounts:
        return {}
    return {"resources": {"requests": dict(amounts), "limits": dict(amounts)}}


def volumes_and_mounts(
    job: FineTuneJob,
    layout: Layout,
    settings: RenderSettings,
    claims: dict[str, PurePosixPath],
    upstream: UpstreamOutputs | None = None,
) -> tuple[list[Obj], list[Obj]]:
    volumes: list[Obj] = [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_claim(job)}},
        {"name": "trainer-config", "configMap": {"name": config_map_name(job.name)}},
        {
            "name": "dshm",
            "emptyDir": {"medium": "Memory", "sizeLimit": str(job.spec.resources.sharedMemory)},
        },
    ]
    mounts: list[Obj] = [
        {"name": "workspace", "mountPath": str(layout.workspace)},
        {"name": "trainer-config", "mountPath": settings.config_mount, "readOnly": True},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    for i, (claim, path) in enumerate(sorted(claims.items())):
        name = f"input-{i}"
        volumes.append(
            {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        mounts.append({"name": name, "mountPath": str(path), "readOnly": True})
    ca_volumes, ca_mounts = s3_ca_volumes(job, upstream)
    return volumes + ca_volumes, mounts + ca_mounts


def render_pod_template(
    job: FineTuneJob,
    layout: Layout,
    settings: RenderSettings,
    claims: dict[str, PurePosixPath],
    upstream: UpstreamOutputs | None = None,
) -> Obj:
    """The pod template of every replica; `claims`: the other claims to mount read-only
    (trainer_config.claims_read); `upstream`: the outputs of the stage it starts from."""
    spec = job.spec
    env = render_env(job, layout, settings, upstream)
    volumes, mounts = volumes_and_mounts(job, layout, settings, claims, upstream)
    image = spec.image or settings.trainer_image
    common = {
        "image": image,
        "imagePullPolicy": spec.imagePullPolicy,
        "env": env,
        "volumeMounts": mounts,
        # A failed container's log tail becomes its termination message: status can say why.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    prepare = {
        "name": "prepare",
        "command": [
            "python",
            "-m",
            "kubetune_trainer",
            "prepare",
            "--config",
            f"{settings.config_mount}/{CONFIG_FILE}",
        ],
        **common,
        "securityContext": container_security(job, training=False),
        **resources(job, gpus=False),
    }
    train = {
        "name": CONTAINER,
        "command": training_command(job, settings),
        **common,
        "securityContext": container_security(job, training=True),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        **resources(job, gpus=True),
    }
    pod: Obj = {
        "serviceAccountName": service_account_name(job.name),
        "terminationGracePeriodSeconds": spec.terminationGracePeriodSeconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [prepare],
        "containers": [train],
        "volumes": volumes,
    }
    placement = spec.placement
    optional = {
        "nodeSelector": placement.nodeSelector or None,
        "tolerations": placement.tolerations or None,
        "affinity": placement.affinity,
        "priorityClassName": placement.priorityClassName,
        "schedulerName": placement.schedulerName,
        "imagePullSecrets": [{"name": s} for s in spec.imagePullSecrets] or None,
    }
    pod.update({k: v for k, v in optional.items() if v is not None})
    if spec.network.hostNetwork:
        # Without this policy a host-network pod resolves names with the node's resolver and
        # cannot find the master's Service (<job>-master-0).
        pod.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    meta: Obj = {"labels": {**spec.podMetadata.labels, **labels(job, "trainer")}}
    annotations = dict(spec.podMetadata.annotations)
    if spec.network.secondaryNetworks:
        selections = [n.selection() for n in spec.network.secondaryNetworks]
        annotations[MULTUS_ANNOTATION] = json.dumps(selections, separators=(",", ":"))
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": pod}


def container_security(job: FineTuneJob, *, training: bool) -> Obj:
    """Locked down: no privilege escalation, every capability dropped, non-root. With
    `security.ipcLock` the training container (only) adds IPC_LOCK back, and nothing else."""
    capabilities: Obj = {"drop": ["ALL"]}
    if training and job.spec.security.ipcLock:
        capabilities["add"] = ["IPC_LOCK"]
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "runAsNonRoot": True,
    }
