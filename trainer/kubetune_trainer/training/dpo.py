"""`training.objective: dpo`: TRL's own DPOTrainer on the pairs `prepare` tokenized.

TRL computes the loss (every `lossType` is its implementation), the reference log-probs and
the reward metrics (`rewards/chosen`, `rewards/rejected`, `rewards/accuracies`,
`rewards/margins`), which reach TensorBoard and W&B through the Trainer's reporting and the
FineTuneJob status through the Progress callback.

The reference model, by method:
- LoRA/QLoRA: the base model is handed to TRL unwrapped with the adapter's `peft_config`; TRL
  adds the adapter and gets reference log-probs by disabling it — the same weights, no copy.
- full: `reference: precomputed` (the default) has TRL compute the reference log-probs in one
  pass before the first step, while the model still is the starting model, and keep no
  reference model; they are cached beside the prepared data on the volume (`datasets` cache
  files keyed by the data's and the model's fingerprints), so a restart reuses them.
  `reference: live` keeps a frozen copy of the starting model in memory (TRL loads it from the
  same folder) and runs it every step.
"""

from __future__ import annotations

from typing import Any

import torch
from trl.trainer.dpo_config import DPOConfig
from trl.trainer.dpo_trainer import DataCollatorForPreference, DPOTrainer

from kubetune_api.config import TrainerConfig
from kubetune_api.training_spec import DpoSpec
from kubetune_trainer.training.arguments import training_arguments


class PretokenizedDPOTrainer(DPOTrainer):
    """DPOTrainer on data `prepare` already templated and tokenized (`prompt_ids`,
    `chosen_ids`, `rejected_ids`): TRL's own preprocessing would re-render it from text."""

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, name: str) -> Any:
        if {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(dataset.column_names):
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, name)


class CountingPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, counting the real (non-padding) tokens of each batch for the
    tokens/s figure (both sides of every pair: the prompt is run twice)."""

    real_tokens: int = 0

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = super().torch_call(examples)
        self.real_tokens += int(torch.as_tensor(batch["attention_mask"]).sum())
        return batch

    def take_real_tokens(self) -> int:
        n, self.real_tokens = self.real_tokens, 0
        return n


def dpo_arguments(spec: DpoSpec, max_length: int) -> dict[str, Any]:
    """DPOConfig's own settings from `training.dpo`."""
    return {
        "beta": spec.beta,
        "loss_type": [spec.lossType],
        "label_smoothing": spec.labelSmoothing,
        "precompute_ref_log_probs": spec.reference == "precomputed",
        "max_length": max_length,
        "truncation_mode": "keep_start",
    }


def dpo_trainer(
    config: TrainerConfig, model: Any, peft_config: Any, prepared: Any, tokenizer: Any
) -> tuple[Any, CountingPreferenceCollator]:
    """TRL's DPOTrainer for the job, and the collator that counts its tokens."""
    spec = config.training.dpo or DpoSpec()
    args = training_arguments(
        config,
        model,
        prepared.evaluation is not None,
        kind=DPOConfig,
        **dpo_arguments(spec, config.training.maxLength),
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    collator = CountingPreferenceCollator(
        pad_token_id=tokenizer.pad_token_id, max_length=config.training.maxLength
    )
    trainer = PretokenizedDPOTrainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=prepared.train,
        eval_dataset=prepared.evaluation,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    return trainer, collator
