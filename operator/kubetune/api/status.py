"""The FineTuneJob status: what the operator observed and the trainer reported."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kubetune_trainer.schema import Model

Phase = Literal["Pending", "Preparing", "Training", "Succeeded", "Failed", "Suspended"]


class Condition(Model):
    """A Kubernetes-style condition."""

    type: str
    """Condition type, e.g. `Ready`, `Training`, `Succeeded`, `Failed`, `Suspended`."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: str = Field(default="", pattern=r"^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$")
    """Machine-readable CamelCase reason."""
    message: str = ""
    """What happened, for people."""
    lastTransitionTime: str | None = None
    """When `status` last changed (RFC 3339)."""
    observedGeneration: int | None = None
    """The spec generation this condition describes."""


class Progress(Model):
    """Training progress, reported by the trainer's rank 0."""

    step: int | None = None
    """Optimizer steps done."""
    totalSteps: int | None = None
    """Optimizer steps planned."""
    epoch: float | None = None
    """Epochs done (fractional)."""
    loss: float | None = None
    """Latest training loss."""
    tokensPerSecond: float | None = None
    """Real (non-padding) tokens per second, all processes together."""
    etaSeconds: int | None = None
    """Estimated seconds to the end of training."""
    percent: int | None = Field(default=None, ge=0, le=100)
    """step / totalSteps, as a whole percentage (for the printer column)."""
    updatedAt: str | None = None
    """When the trainer last reported (RFC 3339)."""


class Checkpoints(Model):
    """Checkpoints on the workspace volume."""

    latest: str | None = None
    """Path of the newest complete checkpoint."""
    latestStep: int | None = None
    """Step of the newest complete checkpoint."""
    count: int | None = None
    """Complete checkpoints kept."""


class Outputs(Model):
    """Exported artifacts on the workspace volume."""

    claimName: str | None = None
    """PersistentVolumeClaim holding them."""
    adapter: str | None = None
    """Path of the LoRA adapter."""
    merged: str | None = None
    """Path of the merged (or fully fine-tuned) model."""
    manifest: str | None = None
    """Path of the run manifest (inputs, fingerprints, final metrics)."""


class FineTuneJobStatus(Model):
    """Observed state."""

    phase: Phase | None = None
    """Pending → Preparing → Training → Succeeded or Failed; Suspended while suspended."""
    conditions: list[Condition] = Field(default_factory=list)
    """Conditions, Kubernetes conventions."""
    progress: Progress | None = None
    """Training progress."""
    checkpoints: Checkpoints | None = None
    """Checkpoints."""
    outputs: Outputs | None = None
    """Artifacts."""
    pytorchJobName: str | None = None
    """Name of the PyTorchJob that runs the training."""
    effectiveBatchSize: int | None = None
    """Sequences per optimizer step: micro × accumulation × world size."""
    startTime: str | None = None
    """When training pods first ran (RFC 3339)."""
    completionTime: str | None = None
    """When the job succeeded or failed (RFC 3339)."""
    observedGeneration: int | None = None
    """The spec generation the status describes."""
