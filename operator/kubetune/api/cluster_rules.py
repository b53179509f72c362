"""The spec's rules for what a job asks of the cluster: a Kueue queue, GPUs for the precisions,
optimizers and strategies that need them, NCCL settings, extended resources, secondary
networks and the workspace volume. Part of `rules.RULES`."""

from __future__ import annotations

from kubetune.api.rule import Rule

MULTUS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"

CLUSTER_RULES: tuple[Rule, ...] = (
    Rule(
        "scheduling.priorityClass",
        "!has(self.scheduling.priorityClass) || has(self.scheduling.queue)",
        "a Kueue priority needs a queue: set scheduling.queue (a LocalQueue) or drop "
        "scheduling.priorityClass",
        lambda s: s.scheduling.priorityClass is None or s.scheduling.queue is not None,
    ),
    Rule(
        "training.precision",
        "self.training.precision != 'fp16' || self.distributed.gpusPerNode > 0",
        "fp16 mixed precision needs GPUs; use bf16 or fp32 on CPU",
        lambda s: s.training.precision != "fp16" or s.distributed.gpusPerNode > 0,
    ),
    Rule(
        "training.optimizer",
        "!self.training.optimizer.startsWith('paged_') || self.distributed.gpusPerNode > 0",
        "paged optimizers page GPU memory and need GPUs; use adamw_torch or adamw_8bit on CPU",
        lambda s: not s.training.optimizer.startswith("paged_") or s.distributed.gpusPerNode > 0,
    ),
    Rule(
        "distributed.strategy",
        "self.distributed.strategy != 'deepspeed-zero3-offload' "
        "|| self.distributed.gpusPerNode > 0",
        "offloading to CPU memory needs GPUs to offload from; use deepspeed-zero3 on CPU",
        lambda s: (
            s.distributed.strategy != "deepspeed-zero3-offload" or s.distributed.gpusPerNode > 0
        ),
    ),
    Rule(
        "distributed.strategy",
        "self.distributed.strategy != 'fsdp' || self.distributed.gpusPerNode > 0",
        "FSDP runs through accelerate, which shards only on GPUs; on CPU use ddp or "
        "deepspeed-zero2/deepspeed-zero3",
        lambda s: s.distributed.strategy != "fsdp" or s.distributed.gpusPerNode > 0,
    ),
    Rule(
        "distributed.processesPerNode",
        "self.distributed.gpusPerNode == 0 || !has(self.distributed.processesPerNode)",
        "only for CPU training (gpusPerNode 0); with GPUs there is one process per GPU",
        lambda s: s.distributed.gpusPerNode == 0 or s.distributed.processesPerNode is None,
    ),
    Rule(
        "distributed.nccl.extraEnv",
        "!has(self.distributed.nccl.extraEnv) "
        "|| self.distributed.nccl.extraEnv.all(k, k.startsWith('NCCL_'))",
        "keys must start with NCCL_ (put other variables in env)",
        lambda s: all(k.startswith("NCCL_") for k in s.distributed.nccl.extraEnv),
    ),
    Rule(
        "resources.extendedResources",
        "!has(self.resources.extendedResources) || self.resources.extendedResources.all(r, "
        "!r.name.contains('kubernetes.io/') && !r.name.startsWith('requests.') "
        "&& r.name.matches('^[^/]{1,244}/'))",
        "not an extended resource name: the domain must be at most 244 characters and outside "
        "kubernetes.io, and the name must not start with requests. (cpu, memory and the GPU have "
        "their own fields)",
        lambda s: all(
            "kubernetes.io/" not in r.name
            and not r.name.startswith("requests.")
            and len(r.name.split("/")[0]) <= 244
            for r in s.resources.extendedResources
        ),
        lambda s: ", ".join(r.name for r in s.resources.extendedResources),
    ),
    Rule(
        "resources.extendedResources",
        "!has(self.resources.extendedResources) || self.resources.extendedResources.all(r, "
        "r.name != self.resources.gpuResourceName "
        "&& self.resources.extendedResources.exists_one(o, o.name == r.name))",
        "name each resource once, and not the GPU resource (gpusPerNode sets that one)",
        lambda s: all(
            r.name != s.resources.gpuResourceName
            and [o.name for o in s.resources.extendedResources].count(r.name) == 1
            for r in s.resources.extendedResources
        ),
    ),
    Rule(
        "network.secondaryNetworks",
        "!has(self.network.secondaryNetworks) || !self.network.hostNetwork",
        "a pod on the host network gets no secondary networks (Multus attaches them only to pods "
        "with their own network namespace): drop one of the two",
        lambda s: not (s.network.secondaryNetworks and s.network.hostNetwork),
    ),
    Rule(
        "network.secondaryNetworks",
        "!has(self.network.secondaryNetworks) || !has(self.podMetadata.annotations) "
        "|| !('" + MULTUS_ANNOTATION + "' in self.podMetadata.annotations)",
        "the pods' "
        + MULTUS_ANNOTATION
        + " annotation comes from network.secondaryNetworks: remove it from "
        "podMetadata.annotations",
        lambda s: (
            not (s.network.secondaryNetworks and MULTUS_ANNOTATION in s.podMetadata.annotations)
        ),
    ),
    Rule(
        "storage.accessMode",
        "self.distributed.nodes == 1 || !has(self.storage.accessMode) "
        "|| self.storage.accessMode == 'ReadWriteMany'",
        "more than one node mounts the workspace: use ReadWriteMany (or leave it unset)",
        lambda s: s.distributed.nodes == 1 or s.storage.accessMode in (None, "ReadWriteMany"),
    ),
    Rule(
        "storage.existingClaim",
        "!has(self.storage.existingClaim) || (!has(self.storage.size) "
        "&& !has(self.storage.storageClassName) && !has(self.storage.accessMode))",
        "an existing claim is used as it is: remove size, storageClassName and accessMode",
        lambda s: (
            s.storage.existingClaim is None
            or (
                s.storage.size is None
                and s.storage.storageClassName is None
                and s.storage.accessMode is None
            )
        ),
    ),
)
