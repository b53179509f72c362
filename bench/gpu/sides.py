"""The two sides of each run, kubetune's trainer path and TRL's SFTTrainer, and how a run is
timed (bench/gpu/run.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workload import (
    Preset,
    Run,
    attention_flops_per_token,
    device,
    release_memory,
    synchronize,
)

if TYPE_CHECKING:
    import datasets


class CountingCollator:
    """Wraps a collator and counts the real tokens (the rows' own ids) it is handed."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.tokens = inner, 0

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        self.tokens += sum(len(row["input_ids"]) for row in rows)
        return self.inner(rows)


def clock(counter: CountingCollator, warmup: int, steps: int) -> Any:
    """A callback timing the optimizer steps after `warmup`: (seconds, tokens). The data loader
    collates one batch ahead, at both ends alike, so the count matches the steps timed."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        seconds = tokens = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if state.global_step == warmup:
                synchronize()
                self.start, self.start_tokens = time.perf_counter(), counter.tokens

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if state.global_step == warmup + steps:
                synchronize()
                self.seconds = time.perf_counter() - self.start
                self.tokens = counter.tokens - self.start_tokens
                control.should_save = False  # the Trainer's save at the last step: not timed

    return Clock()


def trainer_config(run: Run, preset: Preset, model: Path, job: Path) -> Any:
    from kubetune_api.config import TrainerConfig

    quantization = {"computeDtype": "bfloat16" if preset.precision == "bf16" else "float32"}
    gpus = device().type == "cuda"
    config = TrainerConfig.model_validate(
        {
            "jobName": "bench",
            "model": {"source": str(model)},
            "dataset": {"sources": [{"source": "synthetic.jsonl"}]},
            "method": {
                "type": run.method,
                "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
                **({"quantization": quantization} if run.method == "qlora" else {}),
            },
            "training": {
                "maxSteps": preset.warmup + preset.steps,
                "microBatchSize": run.micro,
                "maxLength": run.length,
                "gradientCheckpointing": run.checkpointing,
                "optimizer": run.optimizer,
                "precision": preset.precision,
                "warmupRatio": 0.0,
                "saveSteps": 10**6,
                "loggingSteps": 10**6,
            },
            "output": {},
            "tracking": {"tensorboard": False},
            "topology": {"gpus": gpus},
            "paths": {
                "workspace": str(job),
                "cache": str(job / "cache"),
                "job": str(job),
                "output": str(job / "output"),
            },
        }
    )
    # `flex_attention` is not (yet) a value of spec.model.attention: the bench sets it past the
    # API's validation to measure it; modeling.load_model passes any named implementation on.
    config.model = config.model.model_copy(update={"attention": run.attention})
    return config


def prepared_rows(config: Any, samples: list[Any], job: Path) -> list[dict[str, Any]]:
    """The run's packed training split in `prepare`'s own layout (`prepared.json` beside it)."""
    import datasets

    from kubetune_trainer.data.splits import write_split

    data = job / "dataset"
    kept = [s for s in samples if len(s.input_ids) <= config.training.maxLength]
    write_split("train", kept, config, data)
    manifest = {"model": config.model.source, "dataset": str(data)}
    (job / "prepared.json").write_text(json.dumps(manifest))
    return list(datasets.load_from_disk(str(data / "train")))


def kubetune_trainer(run: Run, preset: Preset, model: Path, job: Path, samples: list[Any]) -> Any:
    from kubetune_trainer.data.prepared import load_prepared
    from kubetune_trainer.runtime.progress import FileSink
    from kubetune_trainer.stages.train import build_trainer

    config = trainer_config(run, preset, model, job)
    rows = prepared_rows(config, samples, job)
    trainer, _ = build_trainer(config, load_prepared(config), FileSink(str(job)))
    return trainer, rows


def trl_trainer(run: Run, preset: Preset, model: Path, job: Path, samples: list[Any]) -> Any:
    """TRL's SFTTrainer on the same model, ids, LoRA and settings, with its own packing
    (best-fit decreasing into padding-free rows with restarting position ids) or, with
    `packing` off, batches padded to their longest sample. Without flash-attention, which is not
    installed, a padding-free row of micro × length tokens is one long sequence for SDPA, so the
    padded run is kept as a baseline too; the ratio takes TRL's faster one."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    dtype = torch.bfloat16 if preset.precision == "bf16" else torch.float32
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    gpus = device().type == "cuda"
    base = AutoModelForCausalLM.from_pretrained(
        model,
        dtype=dtype,
        attn_implementation=run.attention,
        quantization_config=quant if run.method == "qlora" else None,
        device_map={"": 0} if gpus else None,
    )
    kept = [s.input_ids for s in samples if len(s.input_ids) <= run.length]
    data = datasets.Dataset.from_dict({"input_ids": kept})
    args = SFTConfig(
        output_dir=str(job),
        max_length=run.length,
        packing=run.packing,
        per_device_train_batch_size=run.micro,
        max_steps=preset.warmup + preset.steps,
        learning_rate=2e-4,
        optim=run.optimizer,
        bf16=preset.precision == "bf16",
        use_cpu=not gpus,
        gradient_checkpointing=run.checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        report_to="none",
        save_strategy="no",
        logging_steps=10**6,
        disable_tqdm=True,
        seed=42,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = SFTTrainer(
        model=base,
        args=args,
        train_dataset=data,
        processing_class=AutoTokenizer.from_pretrained(model),
        peft_config=None if run.method == "full" else lora,
    )
    rows: datasets.Dataset = trainer.train_dataset  # TRL's tokenized copy
    return trainer, list(rows)


def measure(
    run: Run, preset: Preset, model: Path, work: Path, samples: list[Any]
) -> dict[str, Any]:
    import torch

    job = work / run.name.replace(" ", "-")
    job.mkdir(parents=True, exist_ok=True)
    build = kubetune_trainer if run.side == "kubetune" else trl_trainer
    release_memory()
    trainer, rows = build(run, preset, model, job, samples)
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    timing = clock(counter, preset.warmup, preset.steps)
    trainer.add_callback(timing)
    trainer.train()
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    lengths = [len(s.input_ids) for s in samples if len(s.input_ids) <= run.length]
    return {
        "tokensPerSecond": timing.tokens / timing.seconds,
        "tokens": int(timing.tokens),
        "seconds": round(timing.seconds, 3),
        "peakGiB": peak,
        "rows": len(rows),
        # real tokens ÷ row capacity, packed runs (unpacked rows are padded per batch instead)
        "fill": sum(len(r["input_ids"]) for r in rows) / (len(rows) * run.length)
        if run.packing
        else None,
        "attentionFlopsPerToken": attention_flops_per_token(preset.arch, lengths),
    }


def largest_micro_batch(
    run: Run, preset: Preset, model: Path, work: Path, samples: list[Any], entry: dict[str, Any]
) -> dict[str, Any] | None:
    """`measure`, halving the micro-batch after running out of GPU memory; any other failure is
    recorded in the entry (the table shows it) and the next run goes on."""
    import torch

    while True:
        print(f"--- {run.name} (micro {run.micro})", flush=True)
        error = None
        try:
            return measure(run, preset, model, work, samples)
        except torch.cuda.OutOfMemoryError:
            error = f"micro {run.micro}: out of GPU memory"
        except Exception as failure:  # shown in the table; the bench goes on
            error = f"{type(failure).__name__}: {str(failure)[:300]}"
        release_memory()  # after the except block: its traceback held the trainer
        entry["error"] = "; ".join(filter(None, [entry.get("error"), error]))
        print(entry["error"], flush=True)
        if not error.endswith("out of GPU memory") or run.micro == 1:
            return None
        run.micro //= 2
        entry["micro"] = run.micro
