"""Baseline for dpo_throughput.py: a plain TRL DPOTrainer script (TRL tokenizes the raw
conversational pairs itself), LoRA on the tiny model. Prints one JSON line with its real
tokens/s (prompt counted twice, as both sides of a pair run it)."""

from __future__ import annotations

import json
import sys

import datasets
import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl.trainer.dpo_config import DPOConfig
from trl.trainer.dpo_trainer import DPOTrainer

from kubetune_trainer.data.templates import builtin_template


def main(model_path: str, data_path: str, max_length: int, out_dir: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.chat_template = builtin_template("chatml")  # the template the kubetune job uses
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    dataset = datasets.load_dataset("json", data_files=data_path, split="train")
    config = DPOConfig(
        output_dir=out_dir,
        max_length=max_length,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        num_train_epochs=1,
        learning_rate=5e-5,
        beta=0.1,
        optim="adamw_torch",
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        seed=42,
        gradient_checkpointing=True,
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
    )
    rows: datasets.Dataset = trainer.train_dataset  # TRL's tokenized copy
    real = sum(
        min(len(p) + len(c), max_length) + min(len(p) + len(r), max_length)
        for p, c, r in zip(
            rows["prompt_ids"], rows["chosen_ids"], rows["rejected_ids"], strict=True
        )
    )
    metrics = trainer.train().metrics
    print(
        json.dumps(
            {
                "realTokens": real,
                "seconds": metrics["train_runtime"],
                "tokensPerSecond": real / metrics["train_runtime"],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
