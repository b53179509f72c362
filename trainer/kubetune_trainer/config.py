"""The trainer config: what the trainer needs to know, and nothing about Kubernetes.

This module is torch-free on purpose: the operator embeds these sections in the FineTuneJob
API (so the CRD documents them) and validates them before anything runs. The operator renders
a `TrainerConfig` into a ConfigMap; the trainer reads it back with `TrainerConfig.load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, StringConstraints, model_validator

from kubetune_trainer.k8s_syntax import DNS1035Label, DNSSubdomain
from kubetune_trainer.s3_spec import S3Connection
from kubetune_trainer.schema import Model, SecretKeyRef

DatasetFormat = Literal[
    "messages",
    "sharegpt",
    "alpaca",
    "xlam",
    "glaive",
    "text",
    "preference",
    "hh-rlhf",
    "sharegpt-preference",
    "prompts",
]
PREFERENCE_FORMATS = ("preference", "hh-rlhf", "sharegpt-preference")
# What `objective: grpo` can read: prompts, or conversations cut before their last assistant turn
PROMPT_FORMATS = ("prompts", "messages", "sharegpt", "alpaca", "xlam", "glaive")
Objective = Literal["sft", "dpo", "grpo"]
# TRL's DPOConfig.loss_type values (trl/trainer/dpo_config.py), one per job; TRL's `sft` is
# left out: alone it is plain SFT on the chosen side (objective sft does that)
DpoLoss = Literal[
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
]
# TRL's GRPOConfig.loss_type values (trl/trainer/grpo_config.py, TRL 1.16); `luspo` is left out
# (it needs sequence-level importance sampling, which kubetune does not expose)
GrpoLoss = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "vespo"]
BuiltinTemplate = Literal[
    "llama-3", "llama-3.1", "chatml", "gemma", "gemma-2", "gemma-3", "qwen", "qwen2.5", "qwen3"
]
# Real tokenizers `builtin://tiny-llama` can take: llama.cpp's reference vocabularies (the
# pinned llama-cpp-python sdist's models/ggml-vocab-<name>.gguf), those that transformers reads
# back exactly (tests/support/vocabularies.py checks every reference line).
BuiltinTokenizer = Literal["llama-bpe", "qwen2"]
Method = Literal["full", "lora", "qlora"]
Strategy = Literal["ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3", "deepspeed-zero3-offload"]
Precision = Literal["bf16", "fp16", "fp32"]
Optimizer = Literal[
    "adamw_torch",
    "adamw_torch_fused",
    "adamw_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",
    "adafactor",
    "sgd",
]
Scheduler = Literal[
    "linear", "cosine", "cosine_with_min_lr", "constant", "constant_with_warmup", "polynomial"
]
Artifact = Literal["final", "latestCheckpoint"]
Fabric = Literal["auto", "infiniband", "roce", "efa", "tcp"]
PreflightMode = Literal["warn", "fail", "off"]
# hf://, pvc://, s3:// (its naming rules: s3_spec), the built-in tiny model, or a path (any
# other `scheme://` is refused).
SOURCE_PATTERN = (
    r"^(hf://[^/]+/.+|pvc://[a-z0-9][-a-z0-9.]*(/.*)?|s3://[^/]+(/.*)?|builtin://tiny-llama|[^:]+)$"
)


class FromJob(Model):
    """Start from what another FineTuneJob produced (chained stages)."""

    name: DNS1035Label
    """Name of the FineTuneJob in the same namespace (not this job's own)."""
    artifact: Artifact = "final"
    """`final`: its exported output (merged model for full fine-tuning, else the adapter merged
    into its base). `latestCheckpoint`: its newest complete checkpoint."""
    claimName: DNSSubdomain | None = None
    """PersistentVolumeClaim holding that job's workspace. Defaults to this job's own workspace
    claim, which is the case when every stage names the same `storage.existingClaim`."""


class ModelSource(Model):
    """The base model."""

    source: str | None = Field(default=None, pattern=SOURCE_PATTERN, max_length=2048)
    """Where the model comes from: `hf://org/name` (the Hugging Face Hub), `pvc://claim/path`
    (a folder on a PersistentVolumeClaim), a path (absolute, or relative to the workspace
    volume in a cluster and to the FineTuneJob file with `kubetune run`), or
    `builtin://tiny-llama` (a tiny random model built on the spot, for smoke tests), or
    `s3://bucket/prefix` (every object under the prefix, downloaded into the workspace cache,
    verified and cached by ETag; docs/object-storage.md). Set this or `fromJob`."""
    tokenizer: BuiltinTokenizer | None = None
    """Only with `builtin://tiny-llama`: a released family's tokenizer instead of the small
    one trained on the spot, so that GGUF export works (llama.cpp's converter knows it) and
    llama.cpp tokenizes as training did. `llama-bpe` (Llama 3's, with the `llama-3` chat
    template) or `qwen2` (Qwen 2's, with `qwen2.5`). The model stays tiny, but its embedding
    has the whole vocabulary and starts untrained."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of an `hf://` source; pin a commit to reproduce."""
    fromJob: FromJob | None = None
    """Start from another FineTuneJob's output or latest checkpoint. Set this or `source`."""
    tokenSecretRef: SecretKeyRef | None = None
    """Secret holding a Hugging Face token for gated or private models. Passed to the pods as the
    environment variable HF_TOKEN through a secretKeyRef; it never enters the trainer config."""
    trustRemoteCode: bool = False
    """Run Python code shipped with the model. Off by default: enable only for trusted sources."""
    attention: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    """Attention implementation. `auto` takes flash-attention when installed, else PyTorch SDPA."""
    s3: S3Connection | None = None
    """Connection for this s3:// location instead of the job's `s3` (replaces it whole,
    credentials included)."""


class ChatTemplate(Model):
    """How conversations become text. Leave empty to use the tokenizer's own template."""

    builtin: BuiltinTemplate | None = None
    """A model family's official chat template, shipped with kubetune: `llama-3` (Llama 3.0),
    `llama-3.1` (3.1 and later, with its tool format), `gemma` (= `gemma-3`; Gemma 2's output
    plus a system prompt folded into the first user turn), `gemma-2` (refuses system turns),
    `qwen` (= `qwen2.5`, with its default system prompt), `qwen3` (tools, `<think>` reasoning),
    `chatml`. `llama-3`, `gemma*` and `chatml` have no tool syntax of their own: tools, tool calls
    and results are rendered in kubetune's documented convention (Qwen 2.5's)."""
    jinja: str | None = Field(default=None, max_length=65536)
    """An inline Jinja chat template (the `chat_template` format of transformers)."""


class DatasetSource(Model):
    """One dataset and how to read it."""

    source: str = Field(pattern=SOURCE_PATTERN, max_length=2048)
    """`hf://org/name`, `pvc://claim/path/file.jsonl`, `s3://bucket/key` (an object, or every
    object under a prefix), or a path to a JSONL/JSON/Parquet file, a folder of them, or a
    dataset saved with `save_to_disk`."""
    revision: str | None = None
    """Hub revision for `hf://` sources."""
    split: str = "train"
    """Split to read (also accepts slices such as `train[:10%]`)."""
    format: DatasetFormat = "messages"
    """Record layout: `messages` (OpenAI-style, tool calls included), `sharegpt`, `alpaca`,
    `xlam` and `glaive` (function calling), or `text` (plain language modelling). Preference
    pairs (for `training.objective: dpo`): `preference` (TRL's `prompt`/`chosen`/`rejected`, as
    text or conversations, the prompt explicit or the shared start of both; also the
    UltraFeedback-binarized layout), `hh-rlhf` (Anthropic HH `chosen`/`rejected` full texts of
    `Human:`/`Assistant:` turns) or `sharegpt-preference` (LLaMA-Factory: `conversations` plus
    one `chosen` and one `rejected` turn). Prompts (for `training.objective: grpo`): `prompts`
    (`prompt` messages up to the generation point, optional `tools`, every other column a
    reference field for the rewards), or any conversation format, cut before its last assistant
    turn, which becomes the reference (`reference_tool_calls`, `reference_text`)."""
    fields: dict[str, Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=dict)
    """Column renames from the format's names to this dataset's: `{messages: conversations}`."""
    sampleLimit: int | None = Field(default=None, ge=1)
    """Use at most this many records (after shuffling with the training seed)."""
    tokenSecretRef: SecretKeyRef | None = None
    """Secret with a Hugging Face token for a gated dataset (see `model.tokenSecretRef`)."""
    s3: S3Connection | None = None
    """Connection for this s3:// location instead of the job's `s3` (replaces it whole,
    credentials included)."""


Role = Literal["system", "user", "assistant", "tool"]


def _assistant_only() -> list[Role]:
    return ["assistant"]


class DatasetSpec(Model):
    """Training data: one or more datasets, mixed, templated and tokenized the same way."""

    sources: list[DatasetSource] = Field(min_length=1, max_length=32)
    """Datasets to train on, concatenated in order."""
    chatTemplate: ChatTemplate = Field(default_factory=ChatTemplate)
    """Chat template applied to every conversation."""
    trainOnRoles: list[Role] = Field(default_factory=_assistant_only, min_length=1, max_length=4)
    """Roles whose tokens carry loss; every other token is masked out of the labels."""
    evalFraction: float = Field(default=0.0, ge=0.0, le=0.5)
    """Fraction of records held out for evaluation (0 = none). Set this or `validation`."""
    validation: DatasetSource | None = None
    """A separate validation set (any source and format), prepared exactly as the training data
    (same template, masks and packing). Set this or `evalFraction`."""

    @property
    def all_sources(self) -> list[DatasetSource]:
        """The training sources, then the validation source: the order of `paths.datasets`."""
        return [*self.sources, *([self.validation] if self.validation else [])]

    @property
    def has_held_out(self) -> bool:
        return self.evalFraction > 0 or self.validation is not None


class LoraSpec(Model):
    """LoRA adapter settings (peft)."""

    r: int = Field(default=16, ge=1, le=1024)
    """Rank of the update matrices: capacity versus adapter size."""
    alpha: int = Field(default=32, ge=1)
    """Scaling numerator; the update is scaled by alpha / r."""
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    """Dropout on the adapter input."""
    targetModules: list[str] = Field(default_factory=lambda: ["all-linear"], min_length=1)
    """Modules to adapt. `all-linear` adapts every linear layer except the output head."""
    useRslora: bool = False
    """Rank-stabilised scaling (alpha / sqrt(r)), steadier at large ranks."""


class QuantizationSpec(Model):
    """Load the frozen base weights quantized (bitsandbytes)."""

    bits: Literal[4, 8] = 4
    """Bits per base weight."""
    quantType: Literal["nf4", "fp4"] = "nf4"
    """4-bit data type; NF4 fits normally distributed weights best."""
    doubleQuant: bool = True
    """Quantize the quantization constants too (saves about 0.4 bits per parameter)."""
    computeDtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    """Type the de-quantized weights are computed in."""


class MethodSpec(Model):
    """What is trained."""

    type: Method = "lora"
    """`full` updates every weight; `lora` trains an adapter; `qlora` trains an adapter on a
    quantized base (needs `quantization`)."""
    lora: LoraSpec | None = None
    """Adapter settings for `lora` and `qlora` (defaults apply when omitted)."""
    quantization: QuantizationSpec | None = None
    """Quantization of the base model; required by `qlora`."""


class DpoSpec(Model):
    """Direct preference optimisation settings (TRL's DPOTrainer)."""

    beta: float = Field(default=0.1, gt=0, le=100)
    """How far the policy may move from the reference: higher keeps it closer. For `ipo` this
    is the regularisation τ of the IPO paper."""
    lossType: DpoLoss = "sigmoid"
    """The preference loss, as TRL names it: `sigmoid` (the DPO paper), `ipo`, `hinge` (SLiC),
    `robust` (label noise, with `labelSmoothing`), `exo_pair` (needs `labelSmoothing` > 0),
    `nca_pair`, `bco_pair`, `sppo_hard`, `aot`, `aot_unpaired`, `apo_zero`, `apo_down`,
    `discopop`, `sigmoid_norm`."""
    # below 0.5 is a rule (rules.py), not `lt`: the API server checks a whole number such as
    # `0` against an exclusive maximum truncated to an integer (0 >= int(0.5)) and refuses it
    labelSmoothing: float = Field(default=0.0, ge=0.0, le=0.5)
    """Probability that a pair's preference is flipped (`robust`, `aot`, `aot_unpaired`), or
    EXO's ε (`exo_pair`, typically 1e-3). The other losses ignore it."""
    reference: Literal["precomputed", "live"] = "precomputed"
    """Where the reference log-probabilities come from. The reference is the starting model:
    for LoRA/QLoRA the same weights with the adapter disabled (never a second copy); for full
    fine-tuning a frozen copy. `precomputed`: one pass over the data before the first step,
    cached beside the prepared data on the volume (a restart reuses it); no reference model
    stays in memory during training. `live`: computed every step — for full fine-tuning a
    second copy of the model in memory the whole run."""


class GrpoSpec(Model):
    """Group relative policy optimisation settings (TRL's GRPOTrainer, transformers generation).

    Each prompt is completed `numGenerations` times; each completion's reward is the weighted
    sum of `spec.rewards`, and the policy moves towards the completions that beat their group's
    mean. The prompts per optimizer step are micro × accumulation × world size ÷ numGenerations:
    that product must be a multiple of numGenerations."""

    numGenerations: int = Field(default=8, ge=2, le=256)
    """Completions sampled per prompt (the group the advantages are relative to)."""
    maxCompletionLength: int = Field(default=256, ge=1, le=131072)
    """Tokens generated per completion at most; must stay below `training.maxLength`, which
    bounds prompt + completion (longer prompts are skipped and counted by `prepare`)."""
    temperature: float = Field(default=1.0, gt=0, le=10)
    """Sampling temperature: higher explores more."""
    beta: float = Field(default=0.0, ge=0, le=100)
    """KL coefficient against the starting model. 0 (TRL's default) loads no reference model;
    above 0, LoRA/QLoRA use the base with the adapter disabled, full fine-tuning a frozen copy."""
    lossType: GrpoLoss = "dapo"
    """The loss as TRL names it: `dapo` (TRL's default: tokens normalised over the accumulated
    batch), `grpo` (per-sequence normalisation, length-biased), `dr_grpo`, `bnpo`, `cispo`,
    `sapo`, `vespo`."""
    scaleRewards: Literal["group", "batch", "none"] = "group"
    """Divide advantages by the reward standard deviation of the group, of the batch, or not at
    all (Dr. GRPO)."""


class TrainingSpec(Model):
    """Optimisation settings."""

    objective: Objective = "sft"
    """What the model learns from the data: `sft` (the demonstrations' tokens), `dpo`
    (preference pairs: to prefer each `chosen` completion over its `rejected` one, relative to
    the starting model; needs preference-format datasets) or `grpo` (reinforcement learning from
    `spec.rewards` on its own sampled completions; needs a prompts-capable format). The method
    (full, LoRA, QLoRA) is what is trained, either way."""
    dpo: DpoSpec | None = None
    """DPO settings, for `objective: dpo` (defaults apply when omitted)."""
    grpo: GrpoSpec | None = None
    """GRPO settings, for `objective: grpo` (defaults apply when omitted)."""

    epochs: float | None = Field(default=None, gt=0, le=1000)
    """Passes over the data. Defaults to 1 when `maxSteps` is unset."""
    maxSteps: int | None = Field(default=None, ge=1)
    """Optimizer steps to run; overrides `epochs`."""
    learningRate: float = Field(default=2e-4, gt=0, le=1)
    """Peak learning rate."""
    scheduler: Scheduler = "cosine"
    """Learning-rate schedule after warm-up."""
    warmupRatio: float = Field(default=0.03, ge=0, lt=1)
    """Fraction of the steps spent warming up linearly."""
    weightDecay: float = Field(default=0.0, ge=0)
    """Decoupled weight decay."""
    maxGradNorm: float = Field(default=1.0, ge=0)
    """Gradient clipping norm (0 disables)."""
    microBatchSize: int = Field(default=1, ge=1, le=4096)
    """Sequences (or packed rows) per process per forward pass."""
    gradientAccumulationSteps: int | None = Field(default=None, ge=1, le=65536)
    """Micro-batches per optimizer step. Set this or `globalBatchSize`; defaults to 1."""
    globalBatchSize: int | None = Field(default=None, ge=1)
    """Sequences per optimizer step across all processes (= micro × accumulation × world size).
    Accumulation is derived; it must divide evenly."""
    maxLength: int = Field(default=2048, ge=16, le=1048576)
    """Tokens per sequence. Longer samples are truncated and counted in the preparation report."""
    packing: bool = True
    """Pack several samples into each row (no attention or loss across samples). Ignored by
    `objective: dpo`, which pads each chosen/rejected pair per batch, and `grpo`."""
    gradientCheckpointing: bool = True
    """Recompute activations in the backward pass: less memory, about 30% more compute."""
    optimizer: Optimizer = "adamw_torch"
    """Optimizer; the 8-bit ones (bitsandbytes) cut optimizer memory by about 75%."""
    precision: Precision = "bf16"
    """Training precision. fp16 needs GPUs; bf16 needs Ampere or newer (or CPU)."""
    seed: int = Field(default=42, ge=0)
    """Seed for data order, initialisation and dropout."""
    saveSteps: int = Field(default=250, ge=1)
    """Save a checkpoint every this many steps (and on SIGTERM)."""
    saveTotalLimit: int = Field(default=3, ge=1)
    """Checkpoints to keep; older ones are deleted after a newer one is complete."""
    evalSteps: int | None = Field(default=None, ge=1)
    """Evaluate (loss and mean token accuracy on the held-out data) every this many steps;
    needs `dataset.evalFraction` > 0 or `dataset.validation`. Default: `saveSteps`."""
    loggingSteps: int = Field(default=10, ge=1)
    """Log metrics and report progress every this many steps."""


# llama-quantize's file types (llama.cpp tools/quantize, QUANT_OPTIONS) that need no importance
# matrix, lower-cased; tests/trainer/test_gguf_export.py checks them against the pinned llama.cpp.
GgufQuantization = Literal[
    "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q5_1", "q5_0",
    "q4_k_m", "q4_k_s", "q4_1", "q4_0", "q3_k_l", "q3_k_m", "q3_k_s", "q2_k", "iq4_nl", "iq4_xs",
]  # fmt: skip


class GgufSpec(Model):
    """GGUF files for llama.cpp, Ollama and LM Studio (with `gguf` in `formats`)."""

    quantizations: list[GgufQuantization] = Field(default=["q8_0"], min_length=1, max_length=18)
    """One file per entry, converted from the merged model by llama.cpp's convert_hf_to_gguf.py
    (f16, bf16) and quantized from the f16 file by llama.cpp's quantizer. `q8_0` is close to
    lossless; `q4_k_m` and `q5_k_m` are the usual small ones (tensors whose rows are not a
    multiple of 256 fall back to other types in K-quants). No importance matrix is computed, so
    the IQ1/IQ2/IQ3 types are not offered."""


class OutputSpec(Model):
    """What the job leaves on the volume."""

    formats: list[Literal["adapter", "merged", "gguf"]] | None = Field(
        default=None, min_length=1, max_length=3
    )
    """`adapter` (LoRA weights as safetensors), `merged` (base + adapter, a standalone model)
    and/or `gguf` (the merged model as GGUF files, see `gguf`; needs `merged`). Defaults to
    [adapter] for LoRA and QLoRA, and [merged] for full fine-tuning."""
    gguf: GgufSpec | None = None
    """GGUF quantizations (default [q8_0] when `formats` has `gguf`)."""
    path: str | None = Field(default=None, min_length=1, max_length=1024)
    """Folder for the outputs, relative to the workspace volume (default `jobs/<name>/output`);
    it must stay inside the volume (not absolute, no `..`)."""
    uri: str | None = Field(default=None, pattern=r"^s3://[^/]+(/.*)?$", max_length=2048)
    """Also upload the outputs here after the export, e.g. `s3://bucket/runs/my-job/`: adapter,
    merged model, GGUF files, evaluation files, metrics, report and the run manifest, which is
    uploaded last and marks the upload complete. The volume keeps its copy."""
    s3: S3Connection | None = None
    """Connection for this s3:// location instead of the job's `s3` (replaces it whole,
    credentials included)."""


class EvaluationSpec(Model):
    """What is measured on the held-out data (`dataset.evalFraction` or `dataset.validation`).

    Eval loss and mean token accuracy are measured at every `training.evalSteps` and at the end
    whenever there is held-out data. Tool-call scoring runs once, after the outputs are exported:
    each assistant turn of the held-out conversations is generated from its prompt and its tool
    calls are parsed and compared with the reference."""

    toolCalls: bool | None = None
    """Score generated tool calls (well-formed, tool name, exact arguments, called or refrained
    as the reference did). Default: on when the held-out conversations carry tools."""
    baseline: bool = False
    """Score the base model on the same turns too, so the report shows the gain."""
    maxNewTokens: int = Field(default=256, ge=1, le=8192)
    """Tokens generated per turn at most (greedy decoding)."""
    maxSamples: int | None = Field(default=None, ge=1)
    """Score at most this many held-out conversations (all when unset)."""


class WandbSpec(Model):
    """Weights & Biases logging."""

    project: str = Field(min_length=1)
    """W&B project."""
    entity: str | None = None
    """W&B entity (team or user)."""
    apiKeySecretRef: SecretKeyRef | None = None
    """Secret holding the API key, exposed to the pods as WANDB_API_KEY. Required when online."""
    mode: Literal["online", "offline", "disabled"] = "online"
    """`offline` writes runs to the volume for a later `wandb sync`."""


class TrackingSpec(Model):
    """Experiment tracking."""

    wandb: WandbSpec | None = None
    """Weights & Biases."""
    tensorboard: bool = True
    """Write TensorBoard event files to the job's folder on the volume."""


class EntrypointSpec(Model):
    """Run your own training code instead of the built-in SFT trainer."""

    module: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    """Python module run as `torchrun -m MODULE ARGS…`. Set this or `command`."""
    command: list[Annotated[str, StringConstraints(max_length=4096)]] | None = Field(
        default=None, min_length=1, max_length=64
    )
    """Executable and its first arguments, run as `torchrun --no-python COMMAND… ARGS…`."""
    args: list[str] = Field(default_factory=list)
    """Arguments appended after the module or command."""


class ToolCallReward(Model):
    """The tool-call scorer's verdict on the completion against the row's `reference_tool_calls`.

    With reference calls: 0 when nothing (or nothing readable) is called, else 1/3 for
    well-formed calls, +1/3 when the tool names match, +1/3 when the arguments match too
    (parallel calls in any order). Without: 1 for refraining, 0 for calling."""

    syntax: Literal["auto", "hermes", "llama3-json"] = "auto"
    """How calls are written: `auto` reads it from the chat template (`<tool_call>` blocks, or
    Llama 3.1's JSON)."""


class StringCheckReward(Model):
    """1 when the completion (or a value inside it) passes the check, else 0."""

    operation: Literal["equals", "contains", "regex"] = "equals"
    """`equals` (after trimming surrounding whitespace), `contains`, or `regex` (Python `re`
    search, the expected string being the pattern)."""
    expected: str | None = Field(default=None, max_length=4096)
    """The string (or pattern) to check against. Set this or `referenceField`."""
    referenceField: str | None = Field(default=None, min_length=1, max_length=256)
    """Take the expected string from this reference field of each row (e.g. `reference_text`,
    or a `prompts` row's own column)."""
    jsonPath: str | None = Field(
        default=None, pattern=r"^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$"
    )
    """Check a value inside the completion read as JSON, e.g. `$.answer` or `$.items[0].id`
    (a completion that is not JSON, or lacks the path, scores 0)."""


class JsonSchemaReward(Model):
    """1 when the completion parses as JSON and validates against the schema, else 0."""

    jsonSchema: dict[str, Any] = Field(default_factory=dict)
    """A JSON Schema (draft 2020-12); `{}` accepts any JSON."""


class LengthReward(Model):
    """A penalty for long completions: 0 up to `targetTokens`, falling linearly to −1 at
    `training.grpo.maxCompletionLength`."""

    targetTokens: int = Field(ge=0, le=131072)
    """Completion tokens that cost nothing."""


class PythonReward(Model):
    """Your own reward function, importable in the trainer (from the image, or from a folder on
    the workspace volume put on `PYTHONPATH` through `spec.env`, as for a custom entrypoint).

    It is called as `function(completions=[str], references=[dict], prompts=[str])` and returns
    one float per completion."""

    module: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", max_length=256)
    """Python module holding the function."""
    function: str = Field(default="reward", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)
    """Name of the function in the module."""


class RewardSpec(Model):
    """One reward (a grader): exactly one of `toolCall`, `stringCheck`, `jsonSchema`, `length`,
    `python`, and its weight."""

    name: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$", max_length=63
    )
    """Name in the metrics (`rewards/<name>/mean`); defaults to the grader's kind."""
    weight: float = Field(default=1.0, ge=-100, le=100)
    """Weight in the sum that is the completion's reward (TRL's `reward_weights`)."""
    toolCall: ToolCallReward | None = None
    """Tool calls against the row's reference calls (the evaluation's scorer)."""
    stringCheck: StringCheckReward | None = None
    """A string comparison."""
    jsonSchema: JsonSchemaReward | None = None
    """The completion is JSON that validates."""
    length: LengthReward | None = None
    """A length penalty."""
    python: PythonReward | None = None
    """Your own function."""

    @property
    def kind(self) -> str:
        return next(k for k in REWARD_KINDS if getattr(self, k) is not None)

    @property
    def label(self) -> str:
        return self.name or self.kind


REWARD_KINDS = ("toolCall", "stringCheck", "jsonSchema", "length", "python")


class Topology(Model):
    """How many processes the trainer runs as (resolved by the operator or `kubetune run`)."""

    nodes: int = Field(default=1, ge=1)
    """Nodes (pods)."""
    procsPerNode: int = Field(default=1, ge=1)
    """Processes per node: GPUs per node, or CPU processes."""
    gpus: bool = False
    """Whether processes use GPUs."""
    strategy: Strategy = "ddp"
    """Data-parallel strategy."""
    fabric: Fabric = "auto"
    """The inter-node network the job declares (the preflight compares its measurement with it)."""
    preflight: PreflightMode = "warn"
    """The all-reduce bandwidth test before training: warn, fail or off (`preflight.py`)."""

    @property
    def world_size(self) -> int:
        return self.nodes * self.procsPerNode


class Paths(Model):
    """Resolved locations inside the container (or on the laptop for `kubetune run`)."""

    workspace: str
    """Root of the workspace volume."""
    cache: str
    """Shared cache for downloaded models and prepared datasets."""
    job: str
    """This job's folder: checkpoints, progress, logs."""
    output: str
    """Where exported artifacts go."""
    model: str | None = None
    """Resolved local path of the base model when it is not a hub model."""
    datasets: list[str | None] = Field(default_factory=list)
    """Resolved local path of each dataset source (None for hub datasets)."""


class TrainerConfig(Model):
    """Everything the trainer needs, in one file (the ConfigMap key `trainer.yaml`)."""

    apiVersion: Literal["kubetune.io/v1alpha1"] = "kubetune.io/v1alpha1"
    """Version of this contract."""
    kind: Literal["TrainerConfig"] = "TrainerConfig"
    """Always TrainerConfig."""
    jobName: str
    """Name of the FineTuneJob."""
    namespace: str | None = None
    """Namespace of the FineTuneJob (None for local runs)."""
    model: ModelSource
    """The base model."""
    dataset: DatasetSpec | None = None
    """Training data (optional only for custom entrypoints)."""
    method: MethodSpec
    """What is trained."""
    training: TrainingSpec
    """Optimisation settings."""
    output: OutputSpec
    """Artifacts."""
    tracking: TrackingSpec
    """Experiment tracking."""
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    """Held-out evaluation."""
    entrypoint: EntrypointSpec | None = None
    """Custom training code, if any."""
    s3: S3Connection | None = None
    """The job's S3 connection (sources and outputs without their own)."""
    rewards: list[RewardSpec] | None = None
    """The rewards of `objective: grpo`."""
    topology: Topology
    """Process layout."""
    paths: Paths
    """Resolved locations."""

    @model_validator(mode="after")
    def _model_source_present(self) -> TrainerConfig:
        if self.model.source is None and self.paths.model is None:
            raise ValueError("model: needs a resolved source or paths.model")
        return self

    @property
    def gradient_accumulation_steps(self) -> int:
        return effective_accumulation(self.training, self.topology.world_size)

    def dump(self) -> str:
        # LibYAML's emitter when PyYAML has it (its wheels do): the same text, and the operator
        # renders a config for every new job, where the pure-Python emitter took 12 of the 17 ms
        # of a reconcile.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(self.to_wire(), Dumper=dumper, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> TrainerConfig:
        return cls.model_validate(yaml.safe_load(Path(path).read_text()))


def effective_accumulation(training: TrainingSpec, world_size: int) -> int:
    """Gradient accumulation steps, derived from `globalBatchSize` when that is what was given."""
    if training.globalBatchSize is not None:
        return max(1, training.globalBatchSize // (training.microBatchSize * world_size))
    return training.gradientAccumulationSteps or 1


def output_formats(config: TrainerConfig) -> list[str]:
    """What the job exports: as asked, else the adapter for LoRA/QLoRA, the model for full."""
    if config.output.formats:
        return list(config.output.formats)
    return ["merged"] if config.method.type == "full" else ["adapter"]


def gguf_files(config: TrainerConfig) -> dict[str, str]:
    """Quantization → path of its GGUF file (`<output>/gguf/<job>-<quantization>.gguf`); empty
    without `gguf` in the formats."""
    if "gguf" not in output_formats(config):
        return {}
    spec = config.output.gguf or GgufSpec()
    folder = f"{config.paths.output}/gguf"
    return {q: f"{folder}/{config.jobName}-{q}.gguf" for q in dict.fromkeys(spec.quantizations)}
