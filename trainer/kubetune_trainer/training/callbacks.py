"""Trainer callbacks: complete checkpoints, graceful SIGTERM, progress and throughput, and a
pause hook for fault tests.

Every rank runs these callbacks in lockstep, so the collectives in `on_step_end` (a SUM of
real tokens, a MAX of the stop flag) are matched on every rank.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from transformers import TrainerCallback

from kubetune_trainer.report.metrics_log import MetricsLog, metrics_line, read_metrics
from kubetune_trainer.report.metrics_tail import MetricsTail
from kubetune_trainer.runtime.checkpoints import (
    checkpoints,
    complete,
    kept_with_metrics,
    latest_complete,
    mark_complete,
    record_reached,
    record_tokens,
    resume_summary,
    tokens_trained,
)
from kubetune_trainer.runtime.distributed import all_reduce, barrier
from kubetune_trainer.runtime.log import log
from kubetune_trainer.runtime.progress import ProgressSink

PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 125.0,
    "L4": 121.0,
}


class CompleteCheckpoints(TrainerCallback):
    """Mark a checkpoint complete once every rank has saved it, then rotate.

    The Trainer's own rotation is off (save_total_limit=None): it could delete the last
    complete checkpoint before the new one is marked, and a crash then would lose both.

    With an uploader (`output.uploadCheckpoints`, rank 0), each complete checkpoint is handed
    to it, and the rotation leaves the one it is uploading alone.
    """

    def __init__(self, root: Path, keep: int, uploader: Uploader | None = None) -> None:
        self.root, self.keep, self.uploader = root, keep, uploader

    def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        barrier()
        if state.is_world_process_zero:
            folder = self.root / f"checkpoint-{state.global_step}"
            mark_complete(folder, step=state.global_step)
            busy = None
            if self.uploader is not None:
                self.uploader.submit(folder)
                busy = self.uploader.busy_with()
            done = [p for p in checkpoints(self.root) if complete(p)]
            for old in done[: -self.keep]:
                if old != busy:
                    shutil.rmtree(old, ignore_errors=True)
            log(f"checkpoint {folder.name} complete")
        barrier()


class Uploader(Protocol):
    def submit(self, folder: Path) -> None:
        """Queue a complete checkpoint for upload."""

    def busy_with(self) -> Path | None:
        """The checkpoint being uploaded now, if any."""


class GracefulStop(TrainerCallback):
    """On SIGTERM (pod deletion, preemption): finish the step, save, stop.

    Ranks agree through a MAX over the flag each step, so a signal that reached only some
    nodes still stops all of them at the same step.
    """

    def __init__(self) -> None:
        self.requested = False
        self.stopped = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if all_reduce(float(self.requested), dist.ReduceOp.MAX) > 0 and not self.stopped:
            log(f"SIGTERM: saving a checkpoint at step {state.global_step} and stopping")
            control.should_save = True
            control.should_training_stop = True
            self.stopped = True


class StepReached(TrainerCallback):
    """Rank 0 records every step it reaches (checkpoints.record_reached): what a restart
    measures its redone steps against. Listed before PauseAtStep, so a held step counts."""

    def __init__(self, job: Path) -> None:
        self.job = job

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if state.is_world_process_zero:
            record_reached(self.job, state.global_step)


class PauseAtStep(TrainerCallback):
    """A hook for fault tests (FAULT_TEST_PAUSE_AT_STEP=N in the job's spec.env): at step N rank 0
    writes `<job>/paused-at-step-N` and holds the run while that file exists, so a test kills
    the container or fills the volume at a known point instead of racing a running training.
    A run that reaches step N again (resumed after a kill) finds the file and does not pause."""

    VARIABLE = "FAULT_TEST_PAUSE_AT_STEP"

    def __init__(self, job: Path, step: int) -> None:
        self.file, self.step = job / f"paused-at-step-{step}", step

    @classmethod
    def from_env(cls, job: Path) -> list[PauseAtStep]:
        """The hook when the variable is set, else none."""
        step = os.environ.get(cls.VARIABLE)
        return [cls(job, int(step))] if step else []

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if state.global_step != self.step or not state.is_world_process_zero:
            return
        if self.file.exists():
            return  # paused here before this restart
        self.file.touch()
        log(f"paused at step {self.step} while {self.file} exists ({self.VARIABLE})")
        while self.file.exists():
            time.sleep(0.1)
        log(f"resumed at step {self.step}")


class TokenCounter(Protocol):
    def take_real_tokens(self) -> int:
        """Real (non-padding) tokens collated since the last call."""


# TRL's DPO metrics → the status's progress.rewards
REWARDS = {
    "chosen": "rewards/chosen",
    "rejected": "rewards/rejected",
    "accuracy": "rewards/accuracies",
    "margin": "rewards/margins",
}


def rewards(logs: dict[str, Any], prefix: str = "") -> dict[str, float] | None:
    """The preference rewards of a DPO log entry (`prefix` "eval_": of an evaluation); None
    for SFT."""
    found = {k: round(float(logs[prefix + v]), 5) for k, v in REWARDS.items() if prefix + v in logs}
    return found or None


# TRL's GRPO metrics → the status's progress.reinforcement (graders: `rewards/<name>/mean|std`)
REINFORCEMENT = {
    "reward": "reward",
    "rewardStd": "reward_std",
    "kl": "kl",
    "completionLength": "completions/mean_length",
    "clippedRatio": "completions/clipped_ratio",
}


def reinforcement(logs: dict[str, Any]) -> dict[str, Any] | None:
    """The GRPO metrics of a log entry; None for SFT and DPO (no `reward`)."""
    if logs.get("reward") is None:
        return None
    found: dict[str, Any] = {
        k: round(float(logs[v]), 5) for k, v in REINFORCEMENT.items() if logs.get(v) is not None
    }
    graders: dict[str, dict[str, float]] = {}
    for key, value in logs.items():
        parts = key.split("/")
        grader = len(parts) == 3 and parts[0] == "rewards" and parts[2] in ("mean", "std")
        if grader and value is not None:
            graders.setdefault(parts[1], {})[parts[2]] = round(float(value), 5)
    if graders:
        found["graders"] = graders
    return found


class Progress(TrainerCallback):
    """Loss (and DPO rewards), learning rate, real tokens/s, ETA and an MFU estimate, every
    logging step; the latest eval loss and mean token accuracy (`evaluation`), the kept
    checkpoints with their metrics (`checkpointsKept`) and the downsampled metric history
    (`metrics`) ride along with every report, so a rate-limited one is never lost. Every log
    entry, training or evaluation, is also a line of `metrics.jsonl` (`history`)."""

    def __init__(
        self,
        sink: ProgressSink,
        collator: TokenCounter,
        flops_per_token: float,
        checkpoint_root: Path,
        history: MetricsLog,
    ) -> None:
        self.sink, self.collator = sink, collator
        self.history = history
        self.tail = MetricsTail()
        self.flops_per_token = flops_per_token
        self.checkpoint_root = checkpoint_root
        self.last_time = time.monotonic()
        self.tokens = 0.0
        self.rate: float | None = None
        self.started = time.monotonic()
        self.start_step: int | None = None
        self.last: dict[str, Any] | None = None
        self.evaluation: dict[str, Any] = {}
        self.kept: list[dict[str, Any]] = []
        # {resumes, stepsRedone}: recorded by rank 0 before training (checkpoints.record_resume)
        self.resumed = resume_summary(checkpoint_root.parent)
        self.trained = tokens_trained(checkpoint_root.parent)  # what earlier runs processed

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        """Start the clock and the count here: what was collated before (DPO's pass computing
        the reference log-probs) is not training throughput."""
        self.collator.take_real_tokens()
        self.last_time = self.started = time.monotonic()
        if state.is_world_process_zero:  # a resumed run: the history so far, up to its step
            self.tail = MetricsTail()
            for line in read_metrics(self.history.path):
                if line["step"] <= state.global_step:
                    self.tail.add(line)

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.start_step is None:
            self.start_step = state.global_step - 1
        # Count locally every step; reduce only when reporting (one collective per logging step).
        self.tokens += self.collator.take_real_tokens()
        if state.global_step % args.logging_steps == 0:
            now = time.monotonic()
            total = all_reduce(self.tokens, dist.ReduceOp.SUM)
            self.rate = total / max(now - self.last_time, 1e-9)
            self.tokens, self.last_time = 0.0, now
            self.count_trained(state, total)

    def count_trained(self, state: Any, total: float) -> None:
        self.trained += int(total)
        if state.is_world_process_zero:
            record_tokens(self.checkpoint_root.parent, self.trained)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        line = metrics_line(logs, state.global_step, state.epoch, time.time(), self.rate)
        if line is not None:
            self.history.append(line)
            self.tail.add(line)
        if "loss" not in logs:
            return
        step, total = state.global_step, state.max_steps
        done = step - (self.start_step or 0)
        elapsed = time.monotonic() - self.started
        eta = int(elapsed / done * (total - step)) if done > 0 else None
        latest = latest_complete(self.checkpoint_root)
        progress = {
            "phase": "Training",
            "step": step,
            "totalSteps": total,
            "epoch": round(state.epoch or 0.0, 4),
            "loss": round(float(logs["loss"]), 5),
            "learningRate": logs.get("learning_rate"),
            "tokensPerSecond": round(self.rate, 1) if self.rate else None,
            "tokensTrained": self.trained,
            "etaSeconds": eta,
            "mfu": self.mfu(),
            "latestCheckpoint": str(latest) if latest else None,
            "percent": int(100 * step / total) if total else None,
            **self.extra(),
        }
        if preference := rewards(logs):
            progress["rewards"] = preference
        if grpo := reinforcement(logs):
            progress["reinforcement"] = grpo
        self.sink.report(progress)
        self.last = progress
        rate = f"{self.rate:,.0f}" if self.rate else "-"
        accuracy = (preference or {}).get("accuracy")
        log(
            f"step {step}/{total} loss {progress['loss']:.4f} "
            + (f"reward accuracy {accuracy:.3f} " if accuracy is not None else "")
            + (f"reward {grpo['reward']:.3f} " if grpo else "")
            + f"lr {logs.get('learning_rate', 0):.2e} "
            f"tokens/s {rate} eta {eta if eta is not None else '-'}s"
        )

    def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        """The last report is never rate-limited away: status ends at the final step, with the
        tokens of the steps after the last logging step counted (a collective: every rank)."""
        self.count_trained(state, all_reduce(self.tokens, dist.ReduceOp.SUM))
        self.tokens = 0.0
        if not state.is_world_process_zero or self.last is None:
            return
        step, total = state.global_step, state.max_steps
        latest = latest_complete(self.checkpoint_root)
        final = {
            **self.last,
            "step": step,
            "etaSeconds": 0,
            "tokensTrained": self.trained,
            "percent": int(100 * step / total) if total else None,
            "latestCheckpoint": str(latest) if latest else self.last.get("latestCheckpoint"),
            **self.extra(),
        }
        self.sink.report(final, force=True)

    def extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.resumed}
        if self.evaluation:
            out["evaluation"] = self.evaluation
        if self.kept:
            out["checkpointsKept"] = self.kept
        if self.tail.logged:
            out["metrics"] = self.tail.status(str(self.history.path))
        return out

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if not state.is_world_process_zero or not metrics or "eval_loss" not in metrics:
            return
        accuracy = metrics.get("eval_mean_token_accuracy")
        self.evaluation = {
            "step": state.global_step,
            "loss": round(float(metrics["eval_loss"]), 5),
            "meanTokenAccuracy": round(float(accuracy), 5) if accuracy is not None else None,
        }
        if preference := rewards(metrics, prefix="eval_"):
            self.evaluation["rewards"] = preference
        self.sink.report(self.extra())  # the evaluation, with the history it just joined
        log(
            f"eval at step {state.global_step}: loss {self.evaluation['loss']:.4f}, "
            f"mean token accuracy {self.evaluation['meanTokenAccuracy']}"
        )

    def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        """After CompleteCheckpoints (listed before this callback) marked and rotated."""
        if state.is_world_process_zero:
            self.kept = kept_with_metrics(self.checkpoint_root)

    def mfu(self) -> float | None:
        """Model FLOPs utilisation: achieved FLOP/s ÷ the GPUs' bf16 peak (None on CPU)."""
        if not self.rate or not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        if peak is None:
            return None
        world = dist.get_world_size() if dist.is_initialized() else 1
        return round(self.rate * self.flops_per_token / (peak * 1e12 * world), 4)
