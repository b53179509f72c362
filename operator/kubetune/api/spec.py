"""The FineTuneJob spec (`kubetune.io/v1alpha1`): the one definition the CRD is generated from.

The trainer-facing sections (model, dataset, method, training, output, tracking, evaluation,
entrypoint) are the trainer's own torch-free models; this module adds what only Kubernetes
needs: topology, resources, placement, storage and the run policy.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from kubetune.api.corev1 import Affinity, Toleration
from kubetune_api.config import (
    EntrypointSpec,
    EvaluationSpec,
    Fabric,
    OutputSpec,
    PreflightMode,
    Strategy,
    TrackingSpec,
)
from kubetune_api.inputs_spec import DatasetSpec, ModelSource
from kubetune_api.k8s_syntax import (
    POSITIVE_QUANTITY,
    DNSSubdomain,
    ImageReference,
    LabelValue,
)
from kubetune_api.reward_spec import RewardSpec
from kubetune_api.s3_spec import S3Connection
from kubetune_api.schema import Model, SecretKeyRef
from kubetune_api.training_spec import MethodSpec, TrainingSpec, effective_accumulation

Quantity = (
    Annotated[int, Field(ge=1)] | Annotated[str, StringConstraints(pattern=POSITIVE_QUANTITY)]
)
"""A Kubernetes resource quantity above zero, such as `8`, `500m` or `64Gi` (a size, a memory
amount or a CPU count of zero or below is never meant)."""

AnnotationValue = Annotated[str, StringConstraints(max_length=3500)]


def section(cls: type[Model]) -> Any:
    """A sub-object that may be omitted: every one of its defaults then applies."""
    return Field(default_factory=cls)


class NcclSpec(Model):
    """NCCL settings, rendered as environment variables of the training container."""

    debug: Literal["VERSION", "WARN", "INFO", "TRACE"] | None = None
    """NCCL_DEBUG: log level; INFO shows the chosen transports."""
    socketIfname: str | None = None
    """NCCL_SOCKET_IFNAME: network interface(s) for bootstrap and socket transport, e.g. `eth0`."""
    ibDisable: bool | None = None
    """NCCL_IB_DISABLE: turn InfiniBand off (forces sockets)."""
    netGdrLevel: str | None = Field(default=None, pattern=r"^(LOC|PIX|PXB|PHB|SYS|[0-9]+)$")
    """NCCL_NET_GDR_LEVEL: how close NIC and GPU must be for GPUDirect RDMA (e.g. `PHB`)."""
    asyncErrorHandling: bool = True
    """TORCH_NCCL_ASYNC_ERROR_HANDLING (and NCCL_ASYNC_ERROR_HANDLING): a hung collective fails
    the process instead of hanging the job."""
    extraEnv: dict[str, str] = Field(default_factory=dict)
    """More NCCL_* variables, e.g. `{NCCL_IB_HCA: mlx5}`. Keys must start with NCCL_."""


class DistributedSpec(Model):
    """Topology: how many nodes and processes, and how they share the model."""

    nodes: int = Field(default=1, ge=1, le=1024)
    """Pods: one Master plus nodes − 1 Workers."""
    gpusPerNode: int = Field(default=0, ge=0, le=64)
    """GPUs per node; one training process per GPU. 0 trains on CPU."""
    processesPerNode: int | None = Field(default=None, ge=1, le=256)
    """Training processes per node on CPU (gpusPerNode 0). Defaults to 1."""
    strategy: Strategy = "ddp"
    """`ddp` replicates the model; `fsdp` shards it; DeepSpeed ZeRO-2 shards optimizer state and
    gradients, ZeRO-3 also parameters, `-offload` moves them to CPU memory."""
    nccl: NcclSpec = section(NcclSpec)
    """NCCL environment. Explicit settings here win over the fabric preset's."""
    fabric: Fabric = "auto"
    """The network between nodes, setting the NCCL environment for it (docs/operator.md lists
    each preset's variables and sources). `auto` sets nothing: NCCL picks InfiniBand/RoCE when an
    RDMA device is usable, else TCP sockets, silently. `infiniband` and `roce` force NCCL's IB
    verbs transport (NCCL_NET=IB: no silent fallback to sockets). `efa` selects libfabric's EFA
    provider for the aws-ofi-nccl plugin (FI_PROVIDER=efa, FI_EFA_USE_DEVICE_RDMA=1; the image
    must contain the plugin). `tcp` forces sockets (NCCL_NET=Socket, NCCL_IB_DISABLE=1)."""
    preflight: PreflightMode = "warn"
    """A few seconds' all-reduce bandwidth test across all ranks before the first step, reported
    in status.network. `warn`: a multi-node GPU job far below its fabric gets the condition
    NetworkDegraded; `fail`: it fails instead (exit code 4, not retried); `off`: no test."""
    rendezvousTimeoutSeconds: int = Field(default=900, ge=30, le=86400)
    """How long processes wait for each other at start-up (slow image pulls need more)."""


EXTENDED_RESOURCE_PATTERN = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"/([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
)


class ExtendedResource(Model):
    """An extended resource a device plugin advertises, e.g. an RDMA device."""

    name: str = Field(pattern=EXTENDED_RESOURCE_PATTERN, max_length=308)
    """Resource name, fully qualified (`domain/name`) and outside the kubernetes.io domain, as
    Kubernetes requires of extended resources: `rdma/ib`, `nvidia.com/hostdev`,
    `vpc.amazonaws.com/efa`. The name is whatever the cluster's device plugin advertises."""
    count: int = Field(ge=1, le=1_000_000)
    """How many per node: requested and limited on the training container (Kubernetes counts
    extended resources in whole units and never overcommits them)."""


class ResourcesSpec(Model):
    """Per-node resources of the training container."""

    cpu: Quantity | None = None
    """CPU request and limit per node."""
    memory: Quantity | None = None
    """Memory request and limit per node."""
    gpuResourceName: str = Field(
        default="nvidia.com/gpu", pattern=r"^([a-z0-9.-]+/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"
    )
    """Extended resource that counts GPUs."""
    sharedMemory: Quantity = "16Gi"
    """Size of the in-memory /dev/shm (data loader workers and NCCL need more than the default)."""
    extendedResources: list[ExtendedResource] = Field(default_factory=list, max_length=16)
    """More extended resources per node on the training container, e.g. the RDMA devices NCCL
    needs for InfiniBand, RoCE or EFA: `[{name: rdma/ib, count: 1}]`."""


class PlacementSpec(Model):
    """Where the pods may run."""

    nodeSelector: dict[str, LabelValue] = Field(default_factory=dict, max_length=64)
    """Node labels the pods require (keys and values as Kubernetes checks labels)."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64)
    """Pod tolerations (core/v1 Toleration), e.g. for tainted GPU nodes."""
    affinity: Affinity | None = None
    """Pod affinity (core/v1 Affinity)."""
    priorityClassName: DNSSubdomain | None = None
    """PriorityClass of the pods."""
    schedulerName: DNSSubdomain | None = None
    """Scheduler for the pods, e.g. `volcano`."""


class PodMetadata(Model):
    """Extra metadata for the training pods (e.g. sidecar or cost-allocation annotations)."""

    labels: dict[str, LabelValue] = Field(default_factory=dict, max_length=64)
    """Labels added to every training pod: keys are qualified names (`[prefix/]name`), values at
    most 63 characters, as Kubernetes requires of labels."""
    annotations: dict[str, AnnotationValue] = Field(default_factory=dict, max_length=64)
    """Annotations added to every training pod: keys are qualified names; at most 64 of them and
    3,500 characters a value, which keeps them within Kubernetes' 256 KiB for all annotations."""


class SecondaryNetwork(Model):
    """A Multus secondary network (a NetworkAttachmentDefinition) attached to every pod."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    )
    """Name of the NetworkAttachmentDefinition."""
    namespace: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63
    )
    """Its namespace; defaults to the pod's."""
    interface: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_][-A-Za-z0-9_.]*$", max_length=15
    )
    """Interface name in the pod (Linux allows 15 characters), e.g. `net1`; Multus numbers them
    when unset."""

    def selection(self) -> dict[str, str]:
        """The network selection element of the `k8s.v1.cni.cncf.io/networks` annotation."""
        out = {"name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.interface:
            out["interface"] = self.interface
        return out


class NetworkSpec(Model):
    """How the training pods reach each other besides the cluster network."""

    hostNetwork: bool = False
    """Loosens security: run the pods in the node's network namespace (all of the node's
    interfaces, RDMA ones included; DNS policy ClusterFirstWithHostNet). The pods see and can
    bind every host interface, the PyTorchJob port 23456 is taken on the node, and the
    Baseline and Restricted Pod Security Standards refuse such pods."""
    secondaryNetworks: list[SecondaryNetwork] = Field(default_factory=list, max_length=16)
    """Multus secondary networks (e.g. SR-IOV or IPoIB attachments from the NVIDIA network
    operator), rendered as the pod annotation `k8s.v1.cni.cncf.io/networks`."""


class SecuritySpec(Model):
    """Opt-ins that loosen the training container's locked-down security context."""

    ipcLock: bool = False
    """Loosens security: add the IPC_LOCK capability to the training container (every other
    capability stays dropped), so RDMA can pin (register) memory beyond RLIMIT_MEMLOCK. The
    Baseline and Restricted Pod Security Standards refuse it. The kernel gives an added
    capability to a non-root process only through ambient capabilities, which Kubernetes does
    not set: what RDMA needs in practice is a large memlock limit, set on the node's container
    runtime (docs/operator.md); the preflight reports the limit it found."""


class StorageSpec(Model):
    """The workspace volume: model and dataset cache, checkpoints, outputs."""

    existingClaim: DNSSubdomain | None = None
    """Use this PersistentVolumeClaim instead of creating one (chained stages share one)."""
    size: Quantity | None = None
    """Size of the claim kubetune creates. Defaults to 100Gi."""
    storageClassName: DNSSubdomain | None = None
    """StorageClass of the created claim (cluster default when unset)."""
    accessMode: Literal["ReadWriteOnce", "ReadWriteMany"] | None = None
    """Access mode of the created claim. Defaults to ReadWriteMany for more than one node
    (every node mounts the workspace), else ReadWriteOnce."""
    keepOnDelete: bool = False
    """Keep the created claim when the FineTuneJob is deleted (it is not owned by the job)."""


class GangSchedulingSpec(Model):
    """Gang scheduling (Volcano or scheduler-plugins): start all pods or none."""

    minAvailable: int | None = Field(default=None, ge=1)
    """Pods that must be placeable together, at most `distributed.nodes` (one pod per node).
    Defaults to all of them."""
    queue: DNSSubdomain | None = None
    """Scheduler queue."""
    priorityClass: DNSSubdomain | None = None
    """PriorityClass of the pod group."""


class RunPolicySpec(Model):
    """Lifecycle of the underlying PyTorchJob."""

    backoffLimit: int = Field(default=3, ge=0, le=100)
    """Restarts before the job is marked failed; training resumes from the latest checkpoint."""
    activeDeadlineSeconds: int | None = Field(default=None, ge=1)
    """Fail the job after this long."""
    ttlSecondsAfterFinished: int | None = Field(default=None, ge=0)
    """Delete the PyTorchJob (not the FineTuneJob or its outputs) this long after it finished."""
    suspend: bool = False
    """Suspend: pods are deleted, the job resumes from its latest checkpoint when unset."""
    gangScheduling: GangSchedulingSpec | None = None
    """Gang scheduling policy."""


class SchedulingSpec(Model):
    """Queueing under Kueue (docs/kueue.md): quotas, admission order and preemption."""

    queue: Annotated[LabelValue, StringConstraints(min_length=1)] | None = None
    """Kueue LocalQueue in the job's namespace. The PyTorchJob is created suspended with the
    label `kueue.x-k8s.io/queue-name`, and Kueue starts it when its ClusterQueue has quota for
    it (phase `Queued` until then)."""
    priorityClass: Annotated[LabelValue, StringConstraints(min_length=1)] | None = None
    """Kueue WorkloadPriorityClass (label `kueue.x-k8s.io/priority-class`): the order of
    admission, and which running jobs a higher-priority one may preempt. Needs `queue`."""


class EnvVarSource(Model):
    """Where an environment variable's value comes from."""

    secretKeyRef: SecretKeyRef
    """A Secret key."""


class EnvVar(Model):
    """An extra environment variable of every container."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=256)
    """Variable name, once per job. Names the training-operator, torchrun or kubetune set
    (PET_*, MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, KUBETUNE_*, HF_HOME, …) are
    reserved; NCCL_* go in distributed.nccl."""
    value: str | None = None
    """Literal value. A name that looks like a credential (*_TOKEN, *_KEY, *SECRET*,
    *PASSWORD*, *CREDENTIAL*) must use valueFrom instead."""
    valueFrom: EnvVarSource | None = None
    """Value from a Secret key."""


class FineTuneJobSpec(Model):
    """What to fine-tune, on what data, how, and where."""

    model: ModelSource
    """The base model."""
    dataset: DatasetSpec | None = None
    """Training data. Required unless `entrypoint` runs your own code."""
    method: MethodSpec = section(MethodSpec)
    """Full fine-tuning, LoRA or QLoRA."""
    training: TrainingSpec = section(TrainingSpec)
    """Optimisation settings."""
    distributed: DistributedSpec = section(DistributedSpec)
    """Nodes, GPUs and parallelism."""
    resources: ResourcesSpec = section(ResourcesSpec)
    """Per-node resources."""
    placement: PlacementSpec = section(PlacementSpec)
    """Node selection and scheduling."""
    podMetadata: PodMetadata = section(PodMetadata)
    """Labels and annotations for the training pods (kubetune's own labels win)."""
    network: NetworkSpec = section(NetworkSpec)
    """Host network and secondary networks for the training pods."""
    security: SecuritySpec = section(SecuritySpec)
    """Opt-ins that loosen the pods' security, for RDMA."""
    storage: StorageSpec = section(StorageSpec)
    """The workspace volume."""
    output: OutputSpec = section(OutputSpec)
    """Exported artifacts."""
    s3: S3Connection | None = None
    """The connection every s3:// source and `output.uri` uses unless it sets its own `s3`:
    endpoint, region, path-style addressing, CA bundle and the credentials' Secret."""
    tracking: TrackingSpec = section(TrackingSpec)
    """Experiment tracking."""
    evaluation: EvaluationSpec = section(EvaluationSpec)
    """Held-out evaluation: eval loss and token accuracy, and tool-call scoring."""
    entrypoint: EntrypointSpec | None = None
    """Your own training module or command instead of the built-in SFT trainer."""
    rewards: list[RewardSpec] = Field(default_factory=list, max_length=16)
    """The rewards `training.objective: grpo` learns from, summed with their weights (at least
    one for grpo, none otherwise). Each reads the row's reference fields: conversions from
    conversation formats give `reference_tool_calls` and `reference_text`; a `prompts` row's
    other columns are its own reference fields."""
    runPolicy: RunPolicySpec = section(RunPolicySpec)
    """Restarts, deadlines and suspension."""
    scheduling: SchedulingSpec = section(SchedulingSpec)
    """Queueing under Kueue: the LocalQueue and the priority."""
    image: ImageReference | None = None
    """Trainer image. Defaults to the operator's configured trainer image."""
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Image pull policy."""
    imagePullSecrets: list[DNSSubdomain] = Field(default_factory=list, max_length=16)
    """Names of Secrets for pulling the image."""
    env: list[EnvVar] = Field(default_factory=list, max_length=128)
    """Extra environment variables for every container."""
    terminationGracePeriodSeconds: int = Field(default=300, ge=30, le=86400)
    """Time between SIGTERM and SIGKILL; the trainer saves a checkpoint in it."""

    @property
    def security_opt_ins(self) -> list[str]:
        """The settings that loosen the pods' security, by name (for people: validate, docs)."""
        named = [
            ("IPC_LOCK capability", self.security.ipcLock),
            ("hostNetwork", self.network.hostNetwork),
        ]
        return [name for name, on in named if on]

    @property
    def world_size(self) -> int:
        return self.distributed.nodes * self.procs_per_node

    @property
    def procs_per_node(self) -> int:
        d = self.distributed
        return d.gpusPerNode if d.gpusPerNode > 0 else (d.processesPerNode or 1)

    @property
    def accumulation(self) -> int:
        """Gradient accumulation steps, derived from globalBatchSize when that was given."""
        return effective_accumulation(self.training, self.world_size)

    @property
    def effective_batch_size(self) -> int:
        """Samples per optimizer step: micro batch × accumulation × world size."""
        return self.training.microBatchSize * self.accumulation * self.world_size
