"""The trainer config: what the trainer needs to know, and nothing about Kubernetes.

This module is torch-free on purpose: the operator embeds these sections in the FineTuneJob
API (so the CRD documents them) and validates them before anything runs. The operator renders
a `TrainerConfig` into a ConfigMap; the trainer reads it back with `TrainerConfig.load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, StringConstraints, model_validator

from kubetune_api.inputs_spec import DatasetSpec, ModelSource
from kubetune_api.reward_spec import RewardSpec
from kubetune_api.s3_spec import S3Connection, UpstreamOutputs
from kubetune_api.schema import Model, SecretKeyRef
from kubetune_api.training_spec import MethodSpec, TrainingSpec, effective_accumulation

Strategy = Literal["ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3", "deepspeed-zero3-offload"]
Fabric = Literal["auto", "infiniband", "roce", "efa", "tcp"]
PreflightMode = Literal["warn", "fail", "off"]


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
    uploadCheckpoints: bool = False
    """Also upload every complete checkpoint to `<uri>/checkpoints/` (its completion marker last,
    in the background while training goes on), keeping there the newest
    `training.saveTotalLimit`. A job whose volume is lost (a deleted PVC, a node's local disk)
    resumes from the bucket's latest complete checkpoint, losing at most `training.saveSteps`.
    Needs `uri`."""
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
    upstreamOutputs: UpstreamOutputs | None = None
    """With `model.fromJob` (artifact `final`): where that stage uploaded its outputs, read when
    they are not on the volume (set by the operator once the stage succeeded)."""
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
