"""Cross-field rules of the FineTuneJob spec, each written once for each place it runs.

Every rule holds its CEL expression (the API server evaluates it through the CRD's
`x-kubernetes-validations`, so `kubectl apply` refuses bad jobs) beside its Python twin (so
`kubetune validate`, `kubetune run` and the operator refuse the same jobs offline). Tests run
the bad-input table through both and require the same verdict. Messages name the field and
the fix; `self` is the spec, as the API server sees it: defaulted, but with unset lists and
maps absent (so every rule over one starts with `has()`).
"""

from __future__ import annotations

from typing import Any

from kubetune.api.pod_rules import POD_RULES
from kubetune.api.rule import Rule
from kubetune.api.spec import FineTuneJobSpec
from kubetune_trainer.config import PREFERENCE_FORMATS, PROMPT_FORMATS, REWARD_KINDS, GrpoSpec
from kubetune_trainer.s3_spec import S3_RULE_MESSAGE, s3_cel, s3_problem

MULTUS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
_PAIRS = "['" + "', '".join(PREFERENCE_FORMATS) + "']"
_PROMPTS = "['" + "', '".join(PROMPT_FORMATS) + "']"
_GRPO_DEFAULTS = GrpoSpec()
_ONE_KIND = " + ".join(f"(has(r.{k}) ? 1 : 0)" for k in REWARD_KINDS) + " == 1"
_WORLD = (
    "self.distributed.nodes * (self.distributed.gpusPerNode > 0 ? self.distributed.gpusPerNode"
    " : (has(self.distributed.processesPerNode) ? self.distributed.processesPerNode : 1))"
)


def _s3_ok(uri: str | None) -> bool:
    return uri is None or not uri.startswith("s3://") or s3_problem(uri) is None


def _s3_detail(*uris: str | None) -> str:
    return "; ".join(f"{u}: {s3_problem(u)}" for u in uris if u and not _s3_ok(u))


def _s3_override_ok(uri: str | None, override: object) -> bool:
    return override is None or (uri is not None and uri.startswith("s3://"))


def _batch_detail(spec: FineTuneJobSpec) -> str:
    micro, world = spec.training.microBatchSize, spec.world_size
    step, wanted = micro * world, spec.training.globalBatchSize or 0
    below, above = max(1, wanted // step) * step, (wanted // step + 1) * step
    options = f"{below} or {above}" if below != above and below < wanted else f"{above}"
    return f"got {wanted}; {micro} × {world} = {step}, try {options}"


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
        "training.objective",
        "self.training.objective != 'grpo' || (has(self.dataset) "
        f"&& self.dataset.sources.all(s, s.format in {_PROMPTS}))",
        "objective grpo generates from prompts: give every dataset source the format "
        + ", ".join(PROMPT_FORMATS)
        + " (conversations are cut before their last assistant turn)",
        lambda s: (
            s.training.objective != "grpo"
            or (
                s.dataset is not None
                and all(src.format in PROMPT_FORMATS for src in s.dataset.sources)
            )
        ),
    ),
    Rule(
        "dataset.sources",
        "self.training.objective == 'grpo' || !has(self.dataset) "
        "|| self.dataset.sources.all(s, s.format != 'prompts')",
        "format prompts holds no completions to learn from: set training.objective: grpo "
        "(with spec.rewards) to train on it",
        lambda s: (
            s.training.objective == "grpo"
            or s.dataset is None
            or all(src.format != "prompts" for src in s.dataset.sources)
        ),
    ),
    Rule(
        "rewards",
        "self.training.objective != 'grpo' || (has(self.rewards) && self.rewards.size() > 0)",
        "objective grpo learns from rewards: add at least one, e.g. rewards: [{toolCall: {}}]",
        lambda s: s.training.objective != "grpo" or bool(s.rewards),
    ),
    Rule(
        "rewards",
        "!has(self.rewards) || self.rewards.size() == 0 || self.training.objective == 'grpo'",
        "rewards are what objective grpo learns from: set training.objective: grpo "
        "(or remove rewards)",
        lambda s: not s.rewards or s.training.objective == "grpo",
    ),
    Rule(
        "rewards",
        f"!has(self.rewards) || self.rewards.all(r, {_ONE_KIND})",
        "each reward sets exactly one grader: " + ", ".join(REWARD_KINDS),
        lambda s: all(sum(getattr(r, k) is not None for k in REWARD_KINDS) == 1 for r in s.rewards),
    ),
    Rule(
        "rewards",
        "!has(self.rewards) || self.rewards.all(r, !has(r.name) "
        "|| self.rewards.exists_one(o, has(o.name) && o.name == r.name))",
        "name each reward once (the names label its metrics)",
        lambda s: all(
            r.name is None or [o.name for o in s.rewards].count(r.name) == 1 for r in s.rewards
        ),
    ),
    Rule(
        "rewards",
        "!has(self.rewards) || self.rewards.all(r, !has(r.stringCheck) "
        "|| has(r.stringCheck.expected) != has(r.stringCheck.referenceField))",
        "a stringCheck sets exactly one of expected (a fixed string) and referenceField "
        "(the row's own)",
        lambda s: all(
            r.stringCheck is None
            or (r.stringCheck.expected is None) != (r.stringCheck.referenceField is None)
            for r in s.rewards
        ),
    ),
    Rule(
        "training.grpo",
        "!has(self.training.grpo) || self.training.objective == 'grpo'",
        "GRPO settings need training.objective: grpo (or remove training.grpo)",
        lambda s: s.training.grpo is None or s.training.objective == "grpo",
    ),
    Rule(
        "training.grpo.maxCompletionLength",
        "self.training.objective != 'grpo' || (has(self.training.grpo) ? "
        "self.training.grpo.maxCompletionLength : "
        f"{_GRPO_DEFAULTS.maxCompletionLength}) < self.training.maxLength",
        "must be below training.maxLength, which bounds prompt + completion "
        f"(maxCompletionLength defaults to {_GRPO_DEFAULTS.maxCompletionLength})",
        lambda s: (
            s.training.objective != "grpo"
            or (s.training.grpo or _GRPO_DEFAULTS).maxCompletionLength < s.training.maxLength
        ),
    ),
    Rule(
        "training.grpo.numGenerations",
        "self.training.objective != 'grpo' || (has(self.training.globalBatchSize) ? "
        "self.training.globalBatchSize : self.training.microBatchSize * "
        "(has(self.training.gradientAccumulationSteps) ? self.training.gradientAccumulationSteps"
        f" : 1) * {_WORLD}) % (has(self.training.grpo) ? self.training.grpo.numGenerations : "
        f"{_GRPO_DEFAULTS.numGenerations}) == 0",
        "the completions per optimizer step (microBatchSize × accumulation × world size) must "
        "be a multiple of numGenerations: every prompt's group is generated whole "
        f"(numGenerations defaults to {_GRPO_DEFAULTS.numGenerations})",
        lambda s: (
            s.training.objective != "grpo"
            or s.effective_batch_size % (s.training.grpo or _GRPO_DEFAULTS).numGenerations == 0
        ),
        lambda s: (
            f"{s.effective_batch_size} completions a step, "
            f"numGenerations {(s.training.grpo or _GRPO_DEFAULTS).numGenerations}"
        ),
    ),
    Rule(
        "method.lora.targetModules",
        "self.training.objective != 'grpo' || !has(self.method.lora) "
        "|| !('lm_head' in self.method.lora.targetModules)",
        "objective grpo cannot adapt lm_head (TRL computes the log-probabilities from its "
        "weight directly, so an adapter there would never train): remove lm_head",
        lambda s: (
            s.training.objective != "grpo"
            or s.method.lora is None
            or "lm_head" not in s.method.lora.targetModules
        ),
    ),
    Rule(
        "training.evalSteps",
        "self.training.objective != 'grpo' || !has(self.training.evalSteps)",
        "objective grpo measures no held-out loss while training (the held-out tool-call "
        "scoring runs after the export): remove evalSteps",
        lambda s: s.training.objective != "grpo" or s.training.evalSteps is None,
    ),
    Rule(
        "entrypoint",
        "self.training.objective == 'sft' || !has(self.entrypoint)",
        "a custom entrypoint runs its own training; objectives dpo and grpo are the built-in "
        "trainer's: remove one of them",
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
        "model.tokenizer",
        "!has(self.model.tokenizer) || "
        "(has(self.model.source) && self.model.source == 'builtin://tiny-llama')",
        "only builtin://tiny-llama takes a tokenizer (other models bring their own): remove "
        "model.tokenizer",
        lambda s: s.model.tokenizer is None or s.model.source == "builtin://tiny-llama",
    ),
    Rule(
        "output.formats",
        "!has(self.output.formats) || !('gguf' in self.output.formats) "
        "|| !has(self.model.source) || self.model.source != 'builtin://tiny-llama' "
        "|| has(self.model.tokenizer)",
        "builtin://tiny-llama's own tokenizer is trained on the spot, and llama.cpp's converter "
        "only takes BPE tokenizers it knows: set model.tokenizer (llama-bpe or qwen2) or remove "
        "gguf from output.formats",
        lambda s: (
            s.output.formats is None
            or "gguf" not in s.output.formats
            or s.model.source != "builtin://tiny-llama"
            or s.model.tokenizer is not None
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
        "model.source",
        "!has(self.model.source) || " + f"({s3_cel('self.model.source')})",
        S3_RULE_MESSAGE,
        lambda s: _s3_ok(s.model.source),
        lambda s: _s3_detail(s.model.source),
    ),
    Rule(
        "dataset.sources",
        "!has(self.dataset) || self.dataset.sources.all(x, " + s3_cel("x.source") + ")",
        S3_RULE_MESSAGE,
        lambda s: s.dataset is None or all(_s3_ok(x.source) for x in s.dataset.sources),
        lambda s: _s3_detail(*(x.source for x in s.dataset.sources)) if s.dataset else "",
    ),
    Rule(
        "dataset.validation.source",
        "!has(self.dataset) || !has(self.dataset.validation) || "
        + f"({s3_cel('self.dataset.validation.source')})",
        S3_RULE_MESSAGE,
        lambda s: (
            s.dataset is None or s.dataset.validation is None or _s3_ok(s.dataset.validation.source)
        ),
        lambda s: (
            _s3_detail(s.dataset.validation.source) if s.dataset and s.dataset.validation else ""
        ),
    ),
    Rule(
        "output.uri",
        "!has(self.output.uri) || " + f"({s3_cel('self.output.uri')})",
        S3_RULE_MESSAGE,
        lambda s: _s3_ok(s.output.uri),
        lambda s: _s3_detail(s.output.uri),
    ),
    Rule(
        "model.s3",
        "!has(self.model.s3) || (has(self.model.source) && self.model.source.startsWith('s3://'))",
        "an S3 connection for a model that is not s3://: remove model.s3",
        lambda s: _s3_override_ok(s.model.source, s.model.s3),
    ),
    Rule(
        "dataset.sources",
        "!has(self.dataset) || self.dataset.sources.all(x, !has(x.s3) "
        "|| x.source.startsWith('s3://'))",
        "an S3 connection (s3) for a source that is not s3://: remove that source's s3",
        lambda s: (
            s.dataset is None or all(_s3_override_ok(x.source, x.s3) for x in s.dataset.sources)
        ),
    ),
    Rule(
        "output.uri",
        "!has(self.output.uri) || !has(self.entrypoint)",
        "output.uri uploads the built-in trainer's outputs; a custom entrypoint writes its own: "
        "remove output.uri",
        lambda s: s.output.uri is None or s.entrypoint is None,
    ),
    Rule(
        "output.s3",
        "!has(self.output.s3) || has(self.output.uri)",
        "an S3 connection for outputs without output.uri: set output.uri or remove output.s3",
        lambda s: s.output.s3 is None or s.output.uri is not None,
    ),
    *POD_RULES,
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
