"""The Trainer's arguments and experiment tracking from the config, shared by the SFT trainer
(train.py) and TRL's DPO and GRPO trainers (dpo.py, grpo.py), which pass their own
TrainingArguments subclass."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kubetune_api.config import TrainerConfig
from kubetune_trainer.training.strategy import deepspeed_config, fsdp_arguments


def configure_tracking(config: TrainerConfig) -> None:
    """W&B settings from the config (the API key alone comes from a Secret, as WANDB_API_KEY)."""
    job = Path(config.paths.job)
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(job / "tensorboard"))
    wandb = config.tracking.wandb
    if wandb is None:
        return
    os.environ["WANDB_PROJECT"] = wandb.project
    os.environ["WANDB_MODE"] = wandb.mode
    os.environ["WANDB_DIR"] = str(job)
    if wandb.entity:
        os.environ["WANDB_ENTITY"] = wandb.entity


def report_to(config: TrainerConfig) -> list[str]:
    targets = ["tensorboard"] if config.tracking.tensorboard else []
    wandb = config.tracking.wandb
    if wandb is not None and wandb.mode != "disabled":
        targets.append("wandb")
    return targets


def training_arguments(
    config: TrainerConfig, model: Any, has_eval: bool, kind: Any = None, **extra: Any
) -> Any:
    """The Trainer's arguments from the config; `kind` is a TrainingArguments subclass (TRL's
    DPOConfig) taking `extra` settings of its own."""
    from transformers import TrainingArguments

    t, topo = config.training, config.topology
    job = Path(config.paths.job)
    fsdp = fsdp_arguments(topo.strategy, model, t.gradientCheckpointing)
    return (kind or TrainingArguments)(
        output_dir=str(job / "checkpoints"),
        per_device_train_batch_size=t.microBatchSize,
        per_device_eval_batch_size=t.microBatchSize,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=t.learningRate,
        lr_scheduler_type=t.scheduler,
        warmup_steps=t.warmupRatio,  # a float below 1 is a ratio of the total steps
        weight_decay=t.weightDecay,
        max_grad_norm=t.maxGradNorm,
        num_train_epochs=t.epochs or 1.0,
        max_steps=t.maxSteps or -1,
        optim=t.optimizer,
        bf16=t.precision == "bf16",
        fp16=t.precision == "fp16",
        seed=t.seed,
        data_seed=t.seed,
        save_strategy="steps",
        save_steps=t.saveSteps,
        save_total_limit=None,  # CompleteCheckpoints rotates, only complete ones
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.evalSteps or t.saveSteps,
        logging_steps=t.loggingSteps,
        logging_first_step=True,
        report_to=report_to(config),
        run_name=config.jobName,
        gradient_checkpointing=t.gradientCheckpointing and not fsdp,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not topo.gpus,
        ddp_backend=None if topo.gpus else "gloo",
        ddp_find_unused_parameters=False,
        deepspeed=deepspeed_config(topo.strategy),
        disable_tqdm=True,
        **fsdp,
        **extra,
    )
