"""Baseline for train_throughput.py: a plain TRL SFTTrainer script, the seed-5 recipe scaled
down, with TRL's own packing (`packing=True`: best-fit decreasing into padding-free rows) or
batches padded to their longest sample. Prints one JSON line with its real tokens/s."""

from __future__ import annotations

import json
import sys

import datasets
import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl.trainer.sft_config import SFTConfig
from trl.trainer.sft_trainer import SFTTrainer


def main(model_path: str, data_path: str, max_length: int, out_dir: str, packing: bool) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(
        model_path,
        dtype=torch.float32,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float32,
        ),
    )
    dataset = datasets.load_dataset("json", data_files=data_path, split="train")
    config = SFTConfig(
        output_dir=out_dir,
        max_length=max_length,
        packing=packing,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        num_train_epochs=1,
        learning_rate=2e-4,
        optim="adamw_torch",
        use_cpu=True,
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
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
    )
    rows: datasets.Dataset = trainer.train_dataset  # TRL's tokenized copy
    real = sum(len(ids) for ids in rows["input_ids"])  # rows as stored: no padding
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
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "packed")
