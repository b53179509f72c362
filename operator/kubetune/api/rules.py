"""Cross-field rules of the FineTuneJob spec, each written once for each place it runs.

Every rule holds its CEL expression (the API server evaluates it through the CRD's
`x-kubernetes-validations`, so `kubectl apply` refuses bad jobs) beside its Python twin (so
`kubetune validate`, `kubetune run` and the operator refuse the same jobs offline). Tests run
the bad-input table through both and require the same verdict. Messages name the field and
the fix; `self` is the spec, as the API server sees it: defaulted, but with unset lists and
maps absent (so every rule over one starts with `has()`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubetune.api.spec import FineTuneJobSpec
from kubetune_trainer.config import PREFERENCE_FORMATS
from kubetune_trainer.k8s_syntax import (
    is_label_value,
    is_qualified_name,
    label_value_cel,
    qualified_name_cel,
)

CREDENTIAL_NAME = r"(?i)(^|_)(TOKEN|KEY|APIKEY)$|SECRET|PASSWORD|PASSWD|CREDENTIAL"
"""Variable names that look like credentials: `*_TOKEN`, `*_KEY`, `*SECRET*`, `*PASSWORD*`, …"""
RESERVED_ENV = (
    # the training-operator v1.9.3 (pkg/controller.v1/pytorch/envvar.go, master.go, elastic.go)
    "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "PYTHONUNBUFFERED",
    # torchrun, for each process it starts
    "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
    "ROLE_WORLD_SIZE", "ROLE_NAME", "OMP_NUM_THREADS",
    # kubetune's renderer (render/pod.py; render/fabric.py: the fabric presets' FI_* variables
    # are not reserved, spec.env overrides them by design)
    "HF_HOME", "TOKENIZERS_PARALLELISM", "DS_ACCELERATOR", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
)  # fmt: skip
RESERVED_ENV_PREFIX = r"^(PET|KUBETUNE|TORCHELASTIC|NCCL)_"
"""PET_*: the training-operator's torchrun topology; KUBETUNE_*: kubetune's own; NCCL_*: set
through distributed.nccl."""
DOTDOT = r"(^|/)\.\.(/|$)"
"""A `..` path segment: the path may leave its volume."""
TOLERATION_OPERATORS = ("", "Equal", "Exists")
TAINT_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
MULTUS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
_PAIRS = "['" + "', '".join(PREFERENCE_FORMATS) + "']"
_WORLD = (
    "self.distributed.nodes * (self.distributed.gpusPerNode > 0 ? self.distributed.gpusPerNode"
    " : (has(self.distributed.processesPerNode) ? self.distributed.processesPerNode : 1))"
)


@dataclass(frozen=True)
class Rule:
    field: str
    """Path of the offending field below `spec`, e.g. `method.quantization`."""
    cel: str
    """CEL over the spec (`self`); true when the spec is fine."""
    message: str
    """What is wrong and how to fix it."""
    holds: Callable[[Any], bool]
    """Python twin of `cel`."""
    detail: Callable[[Any], str] | None = None
    """The offending values, for messages outside the API server (CEL messages are static)."""

    def explain(self, spec: Any) -> str:
        return f"{self.message} ({self.detail(spec)})" if self.detail else self.message

    @property
    def path(self) -> str:
        return f"spec.{self.field}"


def _batch_detail(spec: FineTuneJobSpec) -> str:
    micro, world = spec.training.microBatchSize, spec.world_size
    step, wanted = micro * world, spec.training.globalBatchSize or 0
    below, above = max(1, wanted // step) * step, (wanted // step + 1) * step
    options = f"{below} or {above}" if below != above and below < wanted else f"{above}"
    return f"got {wanted}; {micro} × {world} = {step}, try {options}"


def _cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{x}'" for x in items) + "]"


_QUALIFIED = (
    "keys must be qualified names: [prefix/]name, the name at most 63 letters, digits, '-', "
    "'_' and '.' starting and ending with a letter or digit, the optional prefix a DNS "
    "subdomain (e.g. example.com/team)"
)


def _qualified_keys(
    field: str, why: str, keys: Callable[[FineTuneJobSpec], dict[str, str]]
) -> Rule:
    """Every key of a map field is a qualified name (label, annotation, node-selector keys)."""
    path = f"self.{field}"
    return Rule(
        field,
        f"!has({path}) || {path}.all(k, " + qualified_name_cel("k") + ")",
        f"{_QUALIFIED} ({why})",
        lambda s: all(is_qualified_name(k) for k in keys(s)),
        lambda s: ", ".join(repr(k) for k in keys(s) if not is_qualified_name(k)),
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "model",
        "has(self.model.source) != has(self.model.fromJob)",
        "set exactly one of model.source (hf://org/name, pvc://claim/path or a path) "
        "or model.fromJob (another FineTuneJob's output)",
        lambda s: (s.model.source is None) != (s.model.fromJob is None),
    ),
    Rule(
        "dataset",
        "has(self.dataset) || has(self.entrypoint)",
        "required: add dataset.sources (only a custom entrypoint may train without one)",
        lambda s: s.dataset is not None or s.entrypoint is not None,
    ),
    Rule(
        "dataset.chatTemplate",
        "!has(self.dataset) || !(has(self.dataset.chatTemplate.builtin) "
        "&& has(self.dataset.chatTemplate.jinja))",
        "set at most one of chatTemplate.builtin and chatTemplate.jinja "
        "(neither uses the tokenizer's own template)",
        lambda s: (
            s.dataset is None
            or not (s.dataset.chatTemplate.builtin and s.dataset.chatTemplate.jinja)
        ),
    ),
    Rule(
        "training.objective",
        "self.training.objective != 'dpo' || (has(self.dataset) "
        f"&& self.dataset.sources.all(s, s.format in {_PAIRS}))",
        "objective dpo trains on preference pairs: give every dataset source the format "
        + ", ".join(PREFERENCE_FORMATS),
        lambda s: (
            s.training.objective != "dpo"
            or (
                s.dataset is not None
                and all(src.format in PREFERENCE_FORMATS for src in s.dataset.sources)
            )
        ),
    ),
    Rule(
        "dataset.sources",
        "self.training.objective == 'dpo' || !has(self.dataset) "
        f"|| self.dataset.sources.all(s, !(s.format in {_PAIRS}))",
        "preference formats hold chosen/rejected pairs: set training.objective: dpo to train "
        "on them",
        lambda s: (
            s.training.objective == "dpo"
            or s.dataset is None
            or all(src.format not in PREFERENCE_FORMATS for src in s.dataset.sources)
        ),
    ),
    Rule(
        "training.dpo",
        "!has(self.training.dpo) || self.training.objective == 'dpo'",
        "DPO settings need training.objective: dpo (or remove training.dpo)",
        lambda s: s.training.dpo is None or s.training.objective == "dpo",
    ),
    Rule(
        "training.dpo.labelSmoothing",
        "!has(self.training.dpo) || self.training.dpo.lossType != 'exo_pair' "
        "|| self.training.dpo.labelSmoothing > 0.0",
        "lossType exo_pair needs labelSmoothing above 0 (EXO's epsilon; its paper uses 1e-3)",
        lambda s: (
            s.training.dpo is None
            or s.training.dpo.lossType != "exo_pair"
            or s.training.dpo.labelSmoothing > 0
        ),
    ),
    Rule(
        "training.dpo.labelSmoothing",
        "!has(self.training.dpo) || self.training.dpo.labelSmoothing < 0.5",
        "must be below 0.5: it is the probability that a preference label is flipped "
        "(robust DPO divides by 1 − 2 × labelSmoothing)",
        lambda s: s.training.dpo is None or s.training.dpo.labelSmoothing < 0.5,
    ),
    Rule(
        "entrypoint",
        "self.training.objective == 'sft' || !has(self.entrypoint)",
        "a custom entrypoint runs its own training; objective dpo is the built-in trainer's: "
        "remove one of them",
        lambda s: s.training.objective == "sft" or s.entrypoint is None,
    ),
    Rule(
        "method.quantization",
        "self.method.type != 'qlora' || has(self.method.quantization)",
        "required when method.type is qlora: e.g. {bits: 4, quantType: nf4, doubleQuant: true}",
        lambda s: s.method.type != "qlora" or s.method.quantization is not None,
    ),
    Rule(
        "method.quantization",
        "self.method.type != 'lora' || !has(self.method.quantization)",
        "a quantized base needs method.type qlora; remove quantization for plain LoRA",
        lambda s: s.method.type != "lora" or s.method.quantization is None,
    ),
    Rule(
        "method",
        "self.method.type != 'full' || (!has(self.method.lora) && !has(self.method.quantization))",
        "full fine-tuning takes neither lora nor quantization; use method.type lora or qlora",
        lambda s: (
            s.method.type != "full" or (s.method.lora is None and s.method.quantization is None)
        ),
    ),
    Rule(
        "output.formats",
        "self.method.type != 'full' || !has(self.output.formats) "
        "|| !('adapter' in self.output.formats)",
        "full fine-tuning produces no adapter: use formats [merged]",
        lambda s: (
            s.method.type != "full" or s.output.formats is None or "adapter" not in s.output.formats
        ),
    ),
    Rule(
        "output.formats",
        "!has(self.output.formats) || !('gguf' in self.output.formats) "
        "|| 'merged' in self.output.formats",
        "gguf is converted from the merged model: add merged to output.formats "
        "(e.g. [adapter, merged, gguf])",
        lambda s: (
            s.output.formats is None
            or "gguf" not in s.output.formats
            or "merged" in s.output.formats
        ),
    ),
    Rule(
        "output.formats",
        "!has(self.output.formats) || !('gguf' in self.output.formats) "
        "|| !has(self.model.source) || self.model.source != 'builtin://tiny-llama'",
        "builtin://tiny-llama's tokenizer is trained on the spot, and llama.cpp's converter only "
        "takes BPE tokenizers it knows: remove gguf from output.formats for this model",
        lambda s: (
            s.output.formats is None
            or "gguf" not in s.output.formats
            or s.model.source != "builtin://tiny-llama"
        ),
    ),
    Rule(
        "output.gguf",
        "!has(self.output.gguf) || (has(self.output.formats) && 'gguf' in self.output.formats)",
        "output.gguf is set but output.formats lacks gguf: add gguf to formats "
        "or remove output.gguf",
        lambda s: s.output.gguf is None or "gguf" in (s.output.formats or []),
    ),
    Rule(
        "training.globalBatchSize",
        "!(has(self.training.globalBatchSize) && has(self.training.gradientAccumulationSteps))",
        "set globalBatchSize or gradientAccumulationSteps, not both (one derives the other)",
        lambda s: (
            s.training.globalBatchSize is None or s.training.gradientAccumulationSteps is None
        ),
    ),
    Rule(
        "training.globalBatchSize",
        f"!has(self.training.globalBatchSize) || self.training.globalBatchSize % "
        f"(self.training.microBatchSize * {_WORLD}) == 0",
        "must be a multiple of microBatchSize × world size (nodes × processes per node)",
        lambda s: (
            s.training.globalBatchSize is None
            or s.training.globalBatchSize % (s.training.microBatchSize * s.world_size) == 0
        ),
        lambda s: _batch_detail(s),
    ),
    Rule(
        "training.evalSteps",
        "!has(self.training.evalSteps) || (has(self.dataset) && "
        "(self.dataset.evalFraction > 0.0 || has(self.dataset.validation)))",
        "evaluation needs held-out data: set dataset.evalFraction above 0 or "
        "dataset.validation, or drop evalSteps",
        lambda s: (
            s.training.evalSteps is None or (s.dataset is not None and s.dataset.has_held_out)
        ),
    ),
    Rule(
        "dataset.validation",
        "!has(self.dataset) || !has(self.dataset.validation) || self.dataset.evalFraction == 0.0",
        "set dataset.validation or dataset.evalFraction, not both (one is the held-out data)",
        lambda s: s.dataset is None or s.dataset.validation is None or s.dataset.evalFraction == 0,
    ),
    Rule(
        "evaluation.toolCalls",
        "!has(self.evaluation.toolCalls) || !self.evaluation.toolCalls || (has(self.dataset) && "
        "(self.dataset.evalFraction > 0.0 || has(self.dataset.validation)))",
        "tool-call scoring needs held-out conversations: set dataset.evalFraction above 0 or "
        "dataset.validation",
        lambda s: not s.evaluation.toolCalls or (s.dataset is not None and s.dataset.has_held_out),
    ),
    Rule(
        "evaluation.baseline",
        "!self.evaluation.baseline || (has(self.dataset) && "
        "(self.dataset.evalFraction > 0.0 || has(self.dataset.validation)))",
        "a baseline needs held-out conversations: set dataset.evalFraction above 0 or "
        "dataset.validation",
        lambda s: not s.evaluation.baseline or (s.dataset is not None and s.dataset.has_held_out),
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
    Rule(
        "tracking.wandb.apiKeySecretRef",
        "!has(self.tracking.wandb) || self.tracking.wandb.mode != 'online' "
        "|| has(self.tracking.wandb.apiKeySecretRef)",
        "online W&B logging needs the API key from a Secret: {name: wandb, key: api-key}",
        lambda s: (
            s.tracking.wandb is None
            or s.tracking.wandb.mode != "online"
            or s.tracking.wandb.apiKeySecretRef is not None
        ),
    ),
    Rule(
        "entrypoint",
        "!has(self.entrypoint) || has(self.entrypoint.module) != has(self.entrypoint.command)",
        "set exactly one of entrypoint.module and entrypoint.command",
        lambda s: (
            s.entrypoint is None or (s.entrypoint.module is None) != (s.entrypoint.command is None)
        ),
    ),
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, has(e.value) != has(e.valueFrom))",
        "each variable takes exactly one of value and valueFrom",
        lambda s: all((e.value is None) != (e.valueFrom is None) for e in s.env),
    ),
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, !e.name.matches('" + CREDENTIAL_NAME + "') "
        "|| has(e.valueFrom))",
        "a variable named like a credential (*_TOKEN, *_KEY, *SECRET*, *PASSWORD*, "
        "*CREDENTIAL*) must come from a Secret: valueFrom.secretKeyRef (or model.tokenSecretRef, "
        "tracking.wandb.apiKeySecretRef for HF_TOKEN and WANDB_API_KEY)",
        lambda s: all(not re.search(CREDENTIAL_NAME, e.name) or e.valueFrom for e in s.env),
        lambda s: ", ".join(e.name for e in s.env if re.search(CREDENTIAL_NAME, e.name)),
    ),
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, !(e.name in " + _cel_list(RESERVED_ENV) + ") "
        "&& !e.name.matches('" + RESERVED_ENV_PREFIX + "'))",
        "reserved: the training-operator, torchrun or kubetune sets this variable (PET_*, "
        "MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, KUBETUNE_*, HF_HOME, …); "
        "NCCL_* settings go in distributed.nccl",
        lambda s: all(
            e.name not in RESERVED_ENV and not re.search(RESERVED_ENV_PREFIX, e.name) for e in s.env
        ),
        lambda s: ", ".join(
            e.name
            for e in s.env
            if e.name in RESERVED_ENV or re.search(RESERVED_ENV_PREFIX, e.name)
        ),
    ),
    Rule(
        "env",
        "!has(self.env) || self.env.all(e, self.env.exists_one(o, o.name == e.name))",
        "name each variable once",
        lambda s: len({e.name for e in s.env}) == len(s.env),
    ),
    Rule(
        "output.path",
        "!has(self.output.path) || (!self.output.path.startsWith('/') "
        "&& !self.output.path.matches(r'" + DOTDOT + "'))",
        "must stay inside the workspace volume: a relative path without '..' segments, "
        "e.g. outputs/run-1",
        lambda s: (
            s.output.path is None
            or (not s.output.path.startswith("/") and not re.search(DOTDOT, s.output.path))
        ),
    ),
    Rule(
        "model.source",
        "!has(self.model.source) || !self.model.source.matches(r'" + DOTDOT + "')",
        "must stay inside its volume (the workspace, or the claim of a pvc:// source): "
        "remove the '..' segments",
        lambda s: s.model.source is None or not re.search(DOTDOT, s.model.source),
    ),
    Rule(
        "dataset.sources",
        "!has(self.dataset) || self.dataset.sources.all(d, !d.source.matches(r'" + DOTDOT + "'))",
        "each source must stay inside its volume (the workspace, or the claim of a pvc:// "
        "source): remove the '..' segments",
        lambda s: (
            s.dataset is None or not any(re.search(DOTDOT, d.source) for d in s.dataset.sources)
        ),
    ),
    Rule(
        "runPolicy.gangScheduling.minAvailable",
        "!has(self.runPolicy.gangScheduling) || !has(self.runPolicy.gangScheduling.minAvailable) "
        "|| self.runPolicy.gangScheduling.minAvailable <= self.distributed.nodes",
        "at most distributed.nodes (one pod per node): more pods than the job has never schedule",
        lambda s: (
            s.runPolicy.gangScheduling is None
            or s.runPolicy.gangScheduling.minAvailable is None
            or s.runPolicy.gangScheduling.minAvailable <= s.distributed.nodes
        ),
    ),
    Rule(
        "entrypoint.command",
        "!has(self.entrypoint) || !has(self.entrypoint.command) "
        r"|| self.entrypoint.command[0].matches(r'\S')",
        "the first item is the executable and must not be empty, e.g. [python, train.py]",
        lambda s: (
            s.entrypoint is None
            or s.entrypoint.command is None
            or bool(re.search(r"\S", s.entrypoint.command[0]))
        ),
    ),
    _qualified_keys(
        "podMetadata.labels", "as Kubernetes requires of label keys", lambda s: s.podMetadata.labels
    ),
    _qualified_keys(
        "podMetadata.annotations",
        "as Kubernetes requires of annotation keys",
        lambda s: s.podMetadata.annotations,
    ),
    _qualified_keys(
        "placement.nodeSelector",
        "node selector keys are node label keys",
        lambda s: s.placement.nodeSelector,
    ),
    # Tolerations as Kubernetes' ValidateTolerations checks them (k8s.io/kubernetes
    # pkg/apis/core/validation/validation.go); the schema (corev1.json) checks their types.
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.key) || t.key == '' || (" + qualified_name_cel("t.key") + "))",
        "a toleration's key is a taint key: " + _QUALIFIED,
        lambda s: all(
            not t.get("key") or is_qualified_name(t["key"]) for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "(has(t.key) && t.key != '') || (has(t.operator) && t.operator == 'Exists'))",
        "a toleration without a key must have operator Exists (it then tolerates every taint)",
        lambda s: all(
            t.get("key") or t.get("operator") == "Exists" for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.operator) || t.operator in " + _cel_list(TOLERATION_OPERATORS) + ")",
        "a toleration's operator is Equal or Exists",
        lambda s: all(
            t.get("operator", "") in TOLERATION_OPERATORS for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.effect) || t.effect in " + _cel_list(TAINT_EFFECTS) + ")",
        "a toleration's effect is NoSchedule, PreferNoSchedule or NoExecute (or empty: all)",
        lambda s: all(t.get("effect", "") in TAINT_EFFECTS for t in s.placement.tolerations),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, "
        "!has(t.tolerationSeconds) || (has(t.effect) && t.effect == 'NoExecute'))",
        "tolerationSeconds needs effect NoExecute",
        lambda s: all(
            "tolerationSeconds" not in t or t.get("effect") == "NoExecute"
            for t in s.placement.tolerations
        ),
    ),
    Rule(
        "placement.tolerations",
        "!has(self.placement.tolerations) || self.placement.tolerations.all(t, !has(t.value) "
        "|| (has(t.operator) && t.operator == 'Exists' ? t.value == '' : ("
        + label_value_cel("t.value")
        + ")))",
        "a toleration's value is empty with operator Exists, else a label value (at most 63 "
        "letters, digits, '-', '_' and '.')",
        lambda s: all(
            "value" not in t
            or (t["value"] == "" if t.get("operator") == "Exists" else is_label_value(t["value"]))
            for t in s.placement.tolerations
        ),
    ),
)


def broken_rules(spec: FineTuneJobSpec) -> list[Rule]:
    """The rules this spec breaks, in declaration order."""
    return [rule for rule in RULES if not rule.holds(spec)]


OBJECT_RULES: tuple[Rule, ...] = (
    Rule(
        "model.fromJob.name",
        "!has(self.spec.model.fromJob) || self.spec.model.fromJob.name != self.metadata.name",
        "names this FineTuneJob itself: a stage cannot start from its own output",
        lambda job: job.spec.model.fromJob is None or job.spec.model.fromJob.name != job.name,
    ),
)
"""Rules over the whole object (`self` is the FineTuneJob): they need metadata.name."""


def broken_object_rules(job: Any) -> list[Rule]:
    return [rule for rule in OBJECT_RULES if not rule.holds(job)]
