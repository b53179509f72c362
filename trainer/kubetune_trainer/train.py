"""The built-in trainer: `torchrun -m kubetune_trainer.train --config trainer.yaml`.

config → prepared data → model (full | LoRA | QLoRA) → Trainer (DDP | FSDP | DeepSpeed) →
complete checkpoints (auto-resume) → export. Reads what `prepare` left in the job folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from kubetune_trainer import versions
from kubetune_trainer.checkpoints import latest_complete, remove_incomplete
from kubetune_trainer.config import TrainerConfig
from kubetune_trainer.log import log

EXIT_SIGTERM = 143  # 128 + SIGTERM: retryable under the PyTorchJob's ExitCode policy


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


def training_arguments(config: TrainerConfig, model: Any, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    from kubetune_trainer.strategy import deepspeed_config, fsdp_arguments

    t, topo = config.training, config.topology
    job = Path(config.paths.job)
    configure_tracking(config)
    fsdp = fsdp_arguments(topo.strategy, model, t.gradientCheckpointing)
    return TrainingArguments(
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
    )


def flops_per_token(model: Any, method: str) -> float:
    """6N for full fine-tuning; about 4N when the base is frozen (no weight gradients)."""
    params = sum(p.numel() for p in model.parameters())
    return (6.0 if method == "full" else 4.0) * params


def describe(model: Any, config: TrainerConfig) -> None:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    quantized = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if type(m).__name__ in ("Linear4bit", "Linear8bitLt")
        }
    )
    log(
        f"world size {os.environ.get('WORLD_SIZE', '1')}, strategy {config.topology.strategy}, "
        f"{config.method.type}: {trainable:,} of {total:,} parameters trainable"
        + (f", quantized layers: {', '.join(quantized)}" if quantized else "")
    )


def run(config: TrainerConfig) -> int:
    import datasets
    from transformers import Trainer

    from kubetune_trainer.callbacks import CompleteCheckpoints, GracefulStop, Progress
    from kubetune_trainer.data.collate import PackedCollator
    from kubetune_trainer.export import export
    from kubetune_trainer.modeling import load_model
    from kubetune_trainer.prepare import load_tokenizer
    from kubetune_trainer.progress import FileSink
    from kubetune_trainer.reporter import Sinks, StatusSink

    job = Path(config.paths.job)
    prepared_file = job / "prepared.json"
    if not prepared_file.exists():
        log(f"{prepared_file} is missing: run `python -m kubetune_trainer prepare` first")
        return 2
    prepared = json.loads(prepared_file.read_text())
    if config.dataset is None:
        log("no dataset: the built-in trainer needs dataset.sources")
        return 2
    root = job / "checkpoints"
    for stale in remove_incomplete(root):
        log(f"removed incomplete checkpoint {stale.name} (a crash while saving)")
    resume = latest_complete(root)

    model_path = Path(prepared["model"])
    tokenizer = load_tokenizer(model_path, config)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device_map = (
        {"": local_rank} if config.topology.gpus and config.method.type == "qlora" else None
    )
    model = load_model(
        str(model_path),
        config.model,
        config.method,
        config.training,
        gpus=config.topology.gpus,
        device_map=device_map,
    )
    describe(model, config)
    data = Path(prepared["dataset"])
    train = datasets.load_from_disk(str(data / "train"))
    evaluation = datasets.load_from_disk(str(data / "eval")) if (data / "eval").exists() else None
    collator = PackedCollator(tokenizer.pad_token_id)
    stop = GracefulStop()
    trainer = Trainer(
        model=model,
        args=training_arguments(config, model, evaluation is not None),
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[
            CompleteCheckpoints(root, config.training.saveTotalLimit),
            stop,
            Progress(
                Sinks(FileSink(job), StatusSink.from_environment()),
                collator,
                flops_per_token(model, config.method.type),
                root,
            ),
        ],
    )
    if resume is not None:
        log(f"resuming from {resume.name}")
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    kind = type(optimizer)
    bits = getattr(optimizer, "args", None) and getattr(optimizer.args, "optim_bits", None)
    log(
        f"trained as {type(trainer.model_wrapped).__name__} with {kind.__module__}.{kind.__name__}"
        + (f" ({bits}-bit state)" if bits else "")
    )
    if stop.stopped:
        log("stopped on SIGTERM after a complete checkpoint; the next start resumes from it")
        return EXIT_SIGTERM
    export(trainer, config, prepared, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetune_trainer.train", description=__doc__)
    parser.add_argument("--config", required=True, help="trainer.yaml (the ConfigMap's key)")
    args = parser.parse_args(argv)
    refused = versions.check()
    if refused:
        print(refused, file=sys.stderr)
        return 1
    return run(TrainerConfig.load(args.config))


if __name__ == "__main__":
    sys.exit(main())
