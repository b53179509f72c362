"""How a job trains: the method (full, LoRA, QLoRA), the objective (SFT, DPO, GRPO) and the
optimisation settings.

Torch-free, as `config.py` (the operator embeds these sections in the FineTuneJob API).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kubetune_api.schema import Model

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
Method = Literal["full", "lora", "qlora"]
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
    # below 0.5 is a rule (objective_rules.py), not `lt`: the API server checks a whole number
    # such as `0` against an exclusive maximum truncated to an integer (0 >= int(0.5)) and
    # refuses it
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


def effective_accumulation(training: TrainingSpec, world_size: int) -> int:
    """Gradient accumulation steps, derived from `globalBatchSize` when that is what was given."""
    if training.globalBatchSize is not None:
        return max(1, training.globalBatchSize // (training.microBatchSize * world_size))
    return training.gradientAccumulationSteps or 1
