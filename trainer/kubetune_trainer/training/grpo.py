"""`training.objective: grpo`: TRL's own GRPOTrainer on the prompts `prepare` rendered, with
`spec.rewards` as its reward functions (`rewards.py`).

Generation is transformers' `generate` inside TRL (no vLLM). TRL computes the advantages, the
loss (`lossType`), the KL term (`beta` > 0) and the metrics: per grader `rewards/<name>/mean`
and `/std`, `reward`, `reward_std`, `kl`, `completions/mean_length`,
`completions/clipped_ratio`, `clip_ratio/*`. They reach metrics.jsonl, TensorBoard and W&B
through the Trainer's logging, and the FineTuneJob status through the Progress callback.

The reference model (beta > 0), by method: LoRA/QLoRA hand the base model to TRL unwrapped
with the adapter's `peft_config`; TRL adds the adapter and gets reference log-probs with it
disabled (no copy). Full fine-tuning: TRL loads a frozen copy from the same folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase
from trl.trainer.grpo_config import GRPOConfig
from trl.trainer.grpo_trainer import GRPOTrainer, RewardFunc

from kubetune_api.config import TrainerConfig
from kubetune_api.training_spec import GrpoSpec
from kubetune_trainer.data.tool_calls import syntax_of
from kubetune_trainer.evaluation.generation import end_of_turn, reply_text
from kubetune_trainer.training.arguments import training_arguments
from kubetune_trainer.training.rewards import graders


class PromptGRPOTrainer(GRPOTrainer):
    """GRPOTrainer on prompts `prepare` already rendered with the chat template (tools and
    generation prompt included, per row): tokenized without special tokens, as SFT tokenizes
    its rendered text (the template wrote any BOS itself). Also the token counter of the
    Progress callback: prompt and completion tokens, counted once across ranks."""

    _counted = 0

    def _tokenize_prompts(self, prompts: list[Any]) -> Any:
        tokenizer = self.processing_class
        if (
            prompts
            and isinstance(prompts[0], str)
            and isinstance(tokenizer, PreTrainedTokenizerBase)
        ):
            ids = tokenizer(text=prompts, add_special_tokens=False)["input_ids"]
            return ids, None, {}
        return super()._tokenize_prompts(prompts)

    def take_real_tokens(self) -> int:
        """Prompt + completion tokens since the last call (TRL gathers them over all ranks, so
        only the main process reports them: Progress sums over ranks)."""
        seen = int(self.state.num_input_tokens_seen)
        new, self._counted = seen - self._counted, seen
        return new if self.accelerator.is_main_process else 0


def grpo_arguments(spec: GrpoSpec, config: TrainerConfig) -> dict[str, Any]:
    """GRPOConfig's own settings from `training.grpo` and the rewards' weights."""
    return {
        "num_generations": spec.numGenerations,
        "max_completion_length": spec.maxCompletionLength,
        "temperature": spec.temperature,
        "beta": spec.beta,
        "loss_type": spec.lossType,
        "scale_rewards": spec.scaleRewards,
        "reward_weights": [r.weight for r in config.rewards or []],
        "log_completions": False,
        "shuffle_dataset": True,
    }


def reply_reader(tokenizer: Any) -> Callable[[Sequence[int]], str]:
    """A completion's tokens as the evaluation reads a generated reply (`toolCall` reads this):
    special tokens kept (`<tool_call>` may be one; TRL's own text drops them), cut at the
    template's end of turn."""
    marker = end_of_turn(tokenizer)

    def read(ids: Sequence[int]) -> str:
        return reply_text(tokenizer.decode(ids, skip_special_tokens=False), tokenizer, marker)

    return read


def grpo_trainer(
    config: TrainerConfig, model: Any, peft_config: Any, prepared: Any, tokenizer: Any
) -> tuple[Any, PromptGRPOTrainer]:
    """TRL's GRPOTrainer for the job (also its own token counter). No evaluation while
    training: the held-out split is scored for tool calls after the export."""
    spec = config.training.grpo or GrpoSpec()
    args = training_arguments(config, model, False, kind=GRPOConfig, **grpo_arguments(spec, config))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    reward_funcs: list[RewardFunc] = [
        *graders(
            config.rewards or [],
            syntax_of(tokenizer.chat_template),
            spec.maxCompletionLength,
            reply_reader(tokenizer),
        )
    ]  # TRL's list type (lists are invariant: a list[Grader] is not a list[RewardFunc])
    trainer = PromptGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=prepared.train,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    return trainer, trainer
