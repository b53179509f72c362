"""The FineTuneJob status: what the operator observed and the trainer reported."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kubetune_api.schema import Model

Phase = Literal["Pending", "Queued", "Preparing", "Training", "Succeeded", "Failed", "Suspended"]


class Condition(Model):
    """A Kubernetes-style condition."""

    type: str
    """`Succeeded`, `Failed`, `Suspended` or `Ready` (always there: Unknown or False with
    the phase's reason until they hold), a phase the job has been in (`Pending`, `Queued`,
    `Preparing`, `Training`: True while current), `SpecChangeRefused` or `NetworkDegraded`."""
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


class Rewards(Model):
    """Preference-tuning rewards (`objective: dpo`), as TRL's DPOTrainer logs them: the
    implicit reward of a completion is beta × (policy − reference log-probability), averaged
    over the latest logging window."""

    chosen: float | None = None
    """Mean reward of the chosen completions (`rewards/chosen`)."""
    rejected: float | None = None
    """Mean reward of the rejected completions (`rewards/rejected`)."""
    accuracy: float | None = None
    """Fraction of pairs whose chosen reward beats the rejected one (`rewards/accuracies`)."""
    margin: float | None = None
    """Mean chosen − rejected reward (`rewards/margins`)."""


class GraderReward(Model):
    """One grader's reward over the latest logging window."""

    mean: float | None = None
    """Mean over the completions (`rewards/<name>/mean`)."""
    std: float | None = None
    """Standard deviation over the completions (`rewards/<name>/std`)."""


class Reinforcement(Model):
    """Reinforcement-learning metrics (`objective: grpo`), as TRL's GRPOTrainer logs them, over
    the latest logging window."""

    reward: float | None = None
    """Mean weighted reward of the sampled completions (`reward`)."""
    rewardStd: float | None = None
    """Its standard deviation (`reward_std`)."""
    kl: float | None = None
    """Mean KL divergence from the starting model (`kl`; only with `grpo.beta` > 0)."""
    completionLength: float | None = None
    """Mean completion length in tokens (`completions/mean_length`)."""
    clippedRatio: float | None = None
    """Fraction of completions cut at `maxCompletionLength` (`completions/clipped_ratio`)."""
    graders: dict[str, GraderReward] = Field(default_factory=dict, max_length=16)
    """Each reward of `spec.rewards`, by name."""


class Upload(Model):
    """The upload of the outputs to `spec.output.uri` (rank 0, after the export)."""

    uri: str
    """The s3:// prefix the outputs go to."""
    bytes: int = Field(ge=0)
    """Bytes sent so far (a file sent again after a transient error counts from zero)."""
    totalBytes: int = Field(ge=0)
    """Bytes of every file but the run manifest, which goes last."""
    percent: int = Field(ge=0, le=100)
    """bytes / totalBytes, as a whole percentage; 100 once the manifest is uploaded too."""
    bytesPerSecond: float | None = None
    """Mean rate since the upload started."""
    done: bool = False
    """True once the run manifest is uploaded: the upload is complete."""


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
    tokensTrained: int | None = Field(default=None, ge=0)
    """Real (non-padding) tokens the training steps processed, all processes and every run
    together: a step a restart redid counts again. The OpenAI API's `trained_tokens`."""
    etaSeconds: int | None = None
    """Estimated seconds to the end of training."""
    percent: int | None = Field(default=None, ge=0, le=100)
    """step / totalSteps, as a whole percentage (for the printer column)."""
    rewards: Rewards | None = None
    """DPO rewards (only for `training.objective: dpo`)."""
    reinforcement: Reinforcement | None = None
    """GRPO rewards, KL and completion lengths (only for `training.objective: grpo`)."""
    resumes: int | None = None
    """Times training resumed from a checkpoint after a stop (a Kueue eviction, a killed or
    recreated pod, a suspend); unset before the first."""
    stepsRedone: int | None = None
    """Optimizer steps done again over all resumes: the furthest step reached before each stop
    minus the checkpoint it resumed from (at most `saveSteps` per resume; none after a
    graceful stop, which saves first). Each resume is in `<job>/resumes.json` and the run
    manifest's `resumes`."""
    upload: Upload | None = None
    """With `spec.output.uri`: the outputs' upload, reported as it goes (a long upload of a
    large model keeps the job `Training` until it is complete)."""
    updatedAt: str | None = None
    """When the trainer last reported (RFC 3339)."""


class CheckpointMetrics(Model):
    """Metrics at a checkpoint's step, named as OpenAI's fine-tuning checkpoint metrics."""

    train_loss: float | None = None
    """The training loss last logged at or before the step."""
    valid_loss: float | None = None
    """The held-out loss last measured at or before the step."""
    valid_mean_token_accuracy: float | None = None
    """The held-out mean token accuracy last measured at or before the step."""


class CheckpointEntry(Model):
    """One complete checkpoint kept on the volume."""

    step: int
    """Optimizer step it was saved at."""
    path: str | None = None
    """Its folder."""
    metrics: CheckpointMetrics | None = None
    """Training and held-out metrics at that step."""


class Checkpoints(Model):
    """Checkpoints on the workspace volume."""

    latest: str | None = None
    """Path of the newest complete checkpoint."""
    latestStep: int | None = None
    """Step of the newest complete checkpoint."""
    count: int | None = None
    """Complete checkpoints kept."""
    kept: list[CheckpointEntry] | None = None
    """The complete checkpoints kept, oldest first, each with its metrics."""


class ToolCallScores(Model):
    """Generated tool calls scored against the held-out conversations' own (see
    docs/trainer.md, "Evaluation"). Rates are 0–1; unset when nothing was there to rate."""

    turns: int | None = None
    """Assistant turns generated (in held-out conversations that carry tools)."""
    toolTurns: int | None = None
    """Turns whose reference calls a tool."""
    noToolTurns: int | None = None
    """Turns whose reference answers without a call."""
    toolNameAccuracy: float | None = None
    """Tool turns where the model called exactly the reference's functions (any order)."""
    argumentsExactMatch: float | None = None
    """Tool turns where the names and the arguments (as decoded JSON) all match."""
    calledWhenExpected: float | None = None
    """Tool turns where the model attempted a call."""
    refrainedWhenNotExpected: float | None = None
    """No-tool turns where the model did not attempt one."""
    wellFormed: float | None = None
    """Attempted calls that parse in the template's syntax."""
    malformed: int | None = None
    """Turns with a call that could not be parsed."""
    generationErrors: int | None = None
    """Turns whose prompt or generation failed (counted, not fatal)."""


class Evaluation(Model):
    """Results on the held-out data (`dataset.evalFraction` or `dataset.validation`)."""

    step: int | None = None
    """Step of the latest eval loss and accuracy."""
    loss: float | None = None
    """Latest held-out loss."""
    meanTokenAccuracy: float | None = None
    """Latest held-out mean token accuracy: share of trained tokens predicted exactly (TRL's
    `mean_token_accuracy`)."""
    rewards: Rewards | None = None
    """Latest held-out DPO rewards (only for `training.objective: dpo`)."""
    toolCalls: ToolCallScores | None = None
    """Tool-call scores of the trained model (after the export)."""
    baselineToolCalls: ToolCallScores | None = None
    """The same scores of the base model (`evaluation.baseline`)."""
    samples: str | None = None
    """Per-turn results (JSON lines) on the workspace volume: prompts' references, generations,
    parsed calls and verdicts."""
    error: str | None = None
    """Why tool-call scoring failed or was skipped; the trained outputs are unaffected."""


class GgufOutput(Model):
    """One GGUF file."""

    quantization: str
    """Its llama.cpp quantization, as in `spec.output.gguf.quantizations`."""
    path: str
    """Its path (sizes are in the run manifest)."""


class Outputs(Model):
    """Exported artifacts on the workspace volume."""

    claimName: str | None = None
    """PersistentVolumeClaim holding them."""
    adapter: str | None = None
    """Path of the LoRA adapter."""
    merged: str | None = None
    """Path of the merged (or fully fine-tuned) model."""
    gguf: list[GgufOutput] | None = None
    """The GGUF files, one per quantization."""
    manifest: str | None = None
    """Path of the run manifest (inputs, fingerprints, final metrics)."""
    report: str | None = None
    """Path of report.html: charts, evaluation, checkpoints, data and spec in one offline file
    (the built-in trainer's)."""
    metrics: str | None = None
    """Path of metrics.jsonl: the metric history, one line per logging step (the built-in
    trainer's)."""
    uri: str | None = None
    """With `spec.output.uri`: the s3:// prefix the outputs were uploaded to (the job succeeds
    only once the upload is complete)."""
    uriManifest: str | None = None
    """The run manifest there: uploaded last, so its presence marks a complete upload."""


class Network(Model):
    """The trainer's preflight: an all-reduce bandwidth test across all ranks before training."""

    backend: str | None = None
    """Process-group backend: `nccl` (GPUs) or `gloo` (CPU)."""
    transport: str | None = None
    """The network NCCL uses between nodes (`IB`, `Socket`, a plugin's name), `gloo` on CPU;
    unset when it could not be told (see transportSource)."""
    transportSource: str | None = None
    """Where `transport` comes from: `ncclLog` (NCCL's own "Using network" line, when
    NCCL_DEBUG_FILE captured it), `environment` (NCCL_NET / NCCL_IB_DISABLE), `devices` (no RDMA
    device in the pod: NCCL can only use sockets), `topology` (one node: no network) or
    `backend` (gloo)."""
    busBandwidthGBps: float | None = None
    """All-reduce bus bandwidth in GB/s at the largest message (nccl-tests' busbw: algorithm
    bandwidth × 2(n−1)/n): comparable with the link speed whatever the rank count."""
    algBandwidthGBps: float | None = None
    """All-reduce algorithm bandwidth in GB/s (message bytes / time) at the largest message."""
    messageBytes: int | None = None
    """The largest message measured."""
    ranks: int | None = None
    """Processes that took part."""
    nodes: int | None = None
    """Nodes they ran on."""
    fabric: str | None = None
    """The declared `spec.distributed.fabric`."""
    expectedMinGBps: float | None = None
    """The floor the declared fabric is held to (multi-node GPU jobs on an RDMA fabric)."""
    memlock: str | None = None
    """RLIMIT_MEMLOCK of the training process (`unlimited` or bytes): what RDMA pins against."""
    verdict: Literal["ok", "belowFabric", "unchecked"] | None = None
    """`belowFabric`: far below the declared fabric (the NetworkDegraded condition says why);
    `unchecked`: nothing to compare with (one node, CPU, or fabric `auto`/`tcp`)."""
    message: str | None = None
    """The finding, for people."""
    measuredAt: str | None = None
    """When the preflight ran (RFC 3339)."""


class MetricPoint(Model):
    """The metrics of one logged step (names as in `metrics.jsonl`, camelCased)."""

    step: int
    """Optimizer step."""
    loss: float | None = None
    """Training loss over the logging window."""
    learningRate: float | None = None
    """Learning rate."""
    gradNorm: float | None = None
    """Gradient norm before clipping."""
    tokensPerSecond: float | None = None
    """Real tokens per second, all processes together."""
    evalLoss: float | None = None
    """Held-out loss, at an evaluation step."""
    evalMeanTokenAccuracy: float | None = None
    """Held-out mean token accuracy, at an evaluation step."""
    rewardAccuracy: float | None = None
    """DPO: share of pairs whose chosen reward beats the rejected one."""
    rewardMargin: float | None = None
    """DPO: mean chosen − rejected reward."""


class MetricsHistory(Model):
    """A bounded, downsampled history of the run (the whole of it is `file`): an overview of
    every `every`-th logged step and the latest steps, by step. Its size does not grow with the
    run's length."""

    points: list[MetricPoint] = Field(default_factory=list, max_length=64)
    """The points, by step."""
    every: int | None = Field(default=None, ge=1)
    """The overview keeps every `every`-th logged step (it doubles as the run grows)."""
    logged: int | None = None
    """Steps logged in all."""
    file: str | None = None
    """The full history (`metrics.jsonl`, one line per logging step) on the workspace volume."""


class QueuePosition(Model):
    """Where a pending job stands in Kueue's queues, counted from 1 (1: Kueue considers it
    next); from Kueue's visibility API (its 0-based `positionInClusterQueue` and
    `positionInLocalQueue`, plus one)."""

    clusterQueue: int = Field(ge=1)
    """Its place among the pending Workloads of the ClusterQueue (all its LocalQueues)."""
    localQueue: int = Field(ge=1)
    """Its place among the pending Workloads of its LocalQueue."""


class Scheduling(Model):
    """Kueue's handling of a job with `spec.scheduling.queue`."""

    clusterQueue: str | None = None
    """The ClusterQueue its LocalQueue points at."""
    position: QueuePosition | None = None
    """While `Queued` and pending: its place in the queue, refreshed every few seconds (also in
    the `Queued` condition's message). Absent where Kueue's visibility API is not served, and
    once Kueue reserves quota for the job."""
    evictions: int | None = None
    """Times Kueue evicted it (preempted by a higher priority, reclaimed quota, deactivated):
    its Workload's `status.schedulingStats.evictions`, summed. Each eviction stops the pods
    (the trainer saves on SIGTERM); the job resumes from its latest complete checkpoint when
    admitted again (the steps redone are `progress.stepsRedone`)."""
    lastEvictionReason: str | None = None
    """Kueue's reason for the latest eviction (`Preempted`, `InactiveWorkload`, ...)."""


class FineTuneJobStatus(Model):
    """Observed state."""

    phase: Phase | None = None
    """Pending → Preparing → Training → Succeeded or Failed; Suspended while suspended; Queued
    while Kueue holds it (spec.scheduling.queue), its condition naming the ClusterQueue and
    Kueue's reason."""
    conditions: list[Condition] = Field(default_factory=list)
    """Conditions, Kubernetes conventions: `kubectl wait --for=condition=Succeeded` waits for
    the job to finish well, `--for=condition=Failed` for it to fail."""
    progress: Progress | None = None
    """Training progress."""
    checkpoints: Checkpoints | None = None
    """Checkpoints."""
    outputs: Outputs | None = None
    """Artifacts."""
    network: Network | None = None
    """The measured network between the ranks (the trainer's preflight)."""
    evaluation: Evaluation | None = None
    """Held-out loss, mean token accuracy and tool-call scores (reported by the trainer)."""
    metrics: MetricsHistory | None = None
    """Loss, learning rate, throughput and evaluation by step, downsampled (reported by the
    trainer)."""
    scheduling: Scheduling | None = None
    """Kueue's queue and evictions (only with `spec.scheduling.queue`)."""
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
