"""One stage of a research curriculum: the team's own trainer, run by kubetune's custom entrypoint.

Reads what kubetune passes (KUBETUNE_MODEL_PATH — the previous stage's latest checkpoint in a
chain —, KUBETUNE_CHECKPOINT_DIR, KUBETUNE_OUTPUT_DIR, KUBETUNE_DEEPSPEED_CONFIG,
KUBETUNE_RESUME_FROM), trains causal-LM steps with transformers' Trainer under the job's
DeepSpeed config, marks each checkpoint complete for kubetune, and writes stage.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from kubetune_trainer.runtime.checkpoints import mark_complete

MAX_LENGTH = {"short": 48, "medium": 96, "long": 128}
CORPUS = Path(__file__).resolve().parents[1] / "curriculum.jsonl"


class MarkComplete(TrainerCallback):
    def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            mark_complete(folder, step=state.global_step)


def texts() -> list[str]:
    out = []
    for line in CORPUS.read_text().splitlines():
        messages = json.loads(line)["messages"]
        out.append("\n".join(f"{m['role']}: {m['content']}" for m in messages))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", required=True)
    parser.add_argument("--curriculum", choices=sorted(MAX_LENGTH), required=True)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    model_path = os.environ["KUBETUNE_MODEL_PATH"]
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    length = MAX_LENGTH[args.curriculum]
    data = Dataset.from_dict({"text": texts()}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=length),
        batched=True,
        remove_columns=["text"],
    )
    training = TrainingArguments(
        output_dir=os.environ["KUBETUNE_CHECKPOINT_DIR"],
        max_steps=args.steps,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_steps=args.steps // 2,
        report_to=[],
        use_cpu=True,
        ddp_backend="gloo",
        deepspeed=os.environ.get("KUBETUNE_DEEPSPEED_CONFIG"),
    )
    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=data,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
        callbacks=[MarkComplete()],
    )
    result = trainer.train(resume_from_checkpoint=os.environ.get("KUBETUNE_RESUME_FROM"))
    if trainer.is_world_process_zero():
        Path(os.environ["KUBETUNE_OUTPUT_DIR"]).mkdir(parents=True, exist_ok=True)
        Path(os.environ["KUBETUNE_OUTPUT_DIR"], "stage.json").write_text(
            json.dumps(
                {
                    "stage": args.stage,
                    "curriculum": args.curriculum,
                    "startedFrom": model_path,
                    "steps": result.global_step,
                    "loss": result.training_loss,
                    "worldSize": training.world_size,
                }
            )
        )


if __name__ == "__main__":
    main()
