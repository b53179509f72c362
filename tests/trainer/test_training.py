"""Real training on CPU: QLoRA 4-bit, DeepSpeed ZeRO-2, FSDP; the tiny Llama built from a
config, loaded from a path like any model. (LoRA across two local "nodes" is
test_evaluation.py's run, which checks the training and its evaluation.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kubetune.api import FineTuneJob
from kubetune_trainer.data.templates import builtin_template
from kubetune_trainer.report.metrics_log import read_metrics
from kubetune_trainer.runtime.checkpoints import latest_complete
from tests.support.jobs import job_dir, manifest, tiny_job, train
from tests.support.tiny_run import TrainedRun, train_tiny


def test_qlora_4bit_trains_an_adapter_and_merges(tiny_model_dir: Path, tmp_path: Path) -> None:
    job = tiny_job(
        tiny_model_dir,
        "qlora",
        **{
            "spec.method": {
                "type": "qlora",
                "quantization": {
                    "bits": 4,
                    "quantType": "nf4",
                    "doubleQuant": True,
                    "computeDtype": "float32",
                },
            },
            "spec.output.formats": ["adapter", "merged"],
            "spec.dataset.evalFraction": 0.1,  # 4-bit layers in eval mode: bitsandbytes' CPU path
            "spec.training.optimizer": "adamw_8bit",  # seed 2's optimizer, bitsandbytes on CPU
            "spec.tracking": {
                "wandb": {"project": "kubetune-tests", "mode": "offline"},
                "tensorboard": True,
            },
        },
    )
    result = train(job, tmp_path)
    assert result.ok, result.log and result.log.read_text()[-3000:]
    log = (job_dir(tmp_path, job) / "logs" / "node-0.log").read_text()
    assert "Linear4bit" in log  # the base really was loaded in 4 bits
    out = manifest(tmp_path, job)
    assert Path(out["outputs"]["adapter"], "adapter_model.safetensors").exists()
    assert Path(out["outputs"]["merged"], "config.json").exists()
    merged_template = Path(out["outputs"]["merged"], "chat_template.jinja").read_text()
    assert merged_template == builtin_template("chatml")
    assert "with bitsandbytes.optim.adamw.AdamW (8-bit state)" in log
    assert out["metrics"]["eval_loss"] > 0, out["metrics"]
    runs = list((job_dir(tmp_path, job) / "wandb").glob("offline-run-*"))
    assert runs and any(runs[0].rglob("*.wandb"))  # W&B offline run on the volume
    assert list((job_dir(tmp_path, job) / "tensorboard").rglob("events.out.tfevents.*"))


def full_fine_tune(
    model_dir: Path, workspace: Path, name: str, distributed: dict[str, object], **extra: object
) -> tuple[FineTuneJob, str]:
    """Full fine-tuning of the tiny model for 20 steps; returns the job and its node-0 log."""
    job = tiny_job(
        model_dir,
        name,
        **{
            "spec.method": {"type": "full"},
            "spec.distributed": distributed,
            "spec.training.maxSteps": 20,
            "spec.training.learningRate": 3e-3,
            **extra,
        },
    )
    result = train(job, workspace)
    assert result.ok, result.log and result.log.read_text()[-3000:]
    assert Path(manifest(workspace, job)["outputs"]["merged"], "config.json").exists()
    return job, (job_dir(workspace, job) / "logs" / "node-0.log").read_text()


def test_full_fine_tuning_with_deepspeed_zero2(tiny_model_dir: Path, tmp_path: Path) -> None:
    job, log = full_fine_tune(
        tiny_model_dir, tmp_path, "zero2", {"processesPerNode": 2, "strategy": "deepspeed-zero2"}
    )
    assert "trained as DeepSpeedEngine" in log
    checkpoint = latest_complete(job_dir(tmp_path, job) / "checkpoints")
    assert checkpoint is not None and any(checkpoint.glob("global_step*"))  # DeepSpeed's own state


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason=(
        "FSDP needs a GPU: accelerate turns FSDP on only for accelerator devices (a MULTI_CPU run "
        "silently becomes DDP), so the API refuses fsdp with gpusPerNode 0"
    ),
)
def test_fsdp_on_gpus(tiny_model_dir: Path, tmp_path: Path) -> None:
    _, log = full_fine_tune(
        tiny_model_dir,
        tmp_path,
        "fsdp",
        {"gpusPerNode": 1, "strategy": "fsdp"},
        **{"spec.training.precision": "bf16"},
    )
    assert "trained as FSDP" in log or "trained as FullyShardedDataParallel" in log


def test_fsdp_arguments_shard_every_decoder_layer(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from kubetune_trainer.training.strategy import fsdp_arguments

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = fsdp_arguments("fsdp", model, checkpointing=True)
    assert args["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert args["fsdp_config"]["use_orig_params"] is True  # LoRA mixes frozen and trainable
    assert args["fsdp_config"]["activation_checkpointing"] is True
    assert fsdp_arguments("ddp", model, checkpointing=True) == {}


def test_the_seed_makes_a_lora_run_reproducible(
    tiny_model_dir: Path, tiny_trained_run: TrainedRun, tmp_path: Path
) -> None:
    """The same job run twice logs the same losses and gradient norms at every step: the LoRA
    adapter, built before the Trainer seeds, is initialised under `training.seed` too (without
    that, the first step's gradient norm differed by up to 3% between runs)."""
    again = train_tiny(tiny_model_dir, tmp_path)
    assert again.result.ok, again.result.log and again.result.log.read_text()[-3000:]

    def trajectory(run: TrainedRun) -> list[dict[str, float]]:
        measured = ("loss", "grad_norm", "eval_loss", "eval_mean_token_accuracy")
        rows = read_metrics(run.job_dir / "metrics.jsonl")
        return [{k: row[k] for k in ("step", *measured) if k in row} for row in rows]

    first = trajectory(tiny_trained_run)
    assert len([row for row in first if "grad_norm" in row]) >= 5, first
    assert trajectory(again) == first
