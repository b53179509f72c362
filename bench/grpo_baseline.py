"""Baseline for grpo_throughput.py: a plain TRL GRPOTrainer script on the same prompts (TRL
applies the chat template itself to the conversational prompts), LoRA on the tiny model, with
the two rewards written out as plain functions: "nine" in the completion (1 or 0), and a length
penalty (0 up to TARGET completion tokens, then linearly down to -1 at the maximum). Prints one
JSON line: completions, generated and seen tokens, seconds, and its own peak RSS."""

from __future__ import annotations

import json
import sys
from typing import Any

import datasets
import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl.trainer.grpo_config import GRPOConfig
from trl.trainer.grpo_trainer import GRPOTrainer

from kubetune_trainer.data.templates import builtin_template


def says_nine(completions: list[Any], **_: Any) -> list[float | None]:
    return [float("nine" in c[-1]["content"]) for c in completions]


def length_penalty(target: int, limit: int) -> Any:
    span = max(1, limit - target)

    def length(completion_ids: list[list[int]], **_: Any) -> list[float | None]:
        return [-min(1.0, max(0, len(ids) - target) / span) for ids in completion_ids]

    return length


def peak_rss_mib() -> float:
    """This process's high-water RSS (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main(model_path: str, data_path: str, settings: dict[str, Any], out_dir: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.chat_template = builtin_template("chatml")  # the template the kubetune job uses
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    dataset = datasets.load_dataset("json", data_files=data_path, split="train")
    dataset = dataset.map(lambda r: {"prompt": [{"role": "user", "content": r["prompt"]}]})
    limit = settings["maxCompletionLength"]
    config = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=settings["micro"],
        gradient_accumulation_steps=settings["accumulation"],
        max_steps=settings["steps"],
        learning_rate=settings["learningRate"],
        lr_scheduler_type="cosine",  # kubetune's defaults: cosine, 3% warmup, clip at 1.0
        warmup_steps=0.03,
        max_grad_norm=1.0,
        num_generations=settings["numGenerations"],
        max_completion_length=limit,
        temperature=settings["temperature"],
        beta=settings["beta"],
        loss_type=settings["lossType"],
        reward_weights=settings["weights"],
        optim="adamw_torch",
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=settings["seed"],
        data_seed=settings["seed"],
        gradient_checkpointing=settings["gradientCheckpointing"],
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[says_nine, length_penalty(settings["targetTokens"], limit)],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
    )
    metrics = trainer.train().metrics
    logged = [x for x in trainer.state.log_history if "completions/mean_length" in x]
    completions = trainer.state.global_step * settings["micro"] * settings["accumulation"]
    print(
        json.dumps(
            {
                "completions": completions,
                "seconds": metrics["train_runtime"],
                "tokens": int(trainer.state.num_input_tokens_seen),
                "meanCompletionLength": sum(x["completions/mean_length"] for x in logged)
                / len(logged),
                "reward": [x["reward"] for x in logged],
                "peakRssMiB": peak_rss_mib(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4])
