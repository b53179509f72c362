"""kubetune's eval `mean_token_accuracy` is TRL's: the same number TRL's SFTTrainer reports for
the same model, rows and collator when the held-out set is one eval batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import pytest

from kubetune_trainer.data.collate import PackedCollator
from kubetune_trainer.data.packing import pack
from kubetune_trainer.data.templates import builtin_template
from kubetune_trainer.data.tokenize import Encoded, Encoder
from kubetune_trainer.evaluation.token_accuracy import argmax, mean_token_accuracy
from tests.support.jobs import TINY_DATA


def rows(tokenizer: Any) -> Any:
    import datasets

    tokenizer.chat_template = builtin_template("chatml")
    chats = [json.loads(line) for line in TINY_DATA.read_text().splitlines()[:24]]
    encoded = Encoder(tokenizer, ["assistant"], 128).encode_batch(chats)
    return datasets.Dataset.from_list(pack([e for e in encoded if isinstance(e, Encoded)], 128))


class CommonArgs(TypedDict):
    """The arguments both trainers get."""

    per_device_eval_batch_size: int
    remove_unused_columns: bool
    report_to: list[str]
    use_cpu: bool


def test_matches_trl_sft_trainer(tiny_model_dir: Path, tokenizer: Any, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    data = rows(tokenizer)
    collator = PackedCollator(tokenizer.pad_token_id)
    common: CommonArgs = {
        "per_device_eval_batch_size": len(data),  # one batch: TRL's per-batch mean is the mean
        "remove_unused_columns": False,
        "report_to": [],
        "use_cpu": True,
    }
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ours = Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path / "ours"), **common),
        eval_dataset=data,
        data_collator=collator,
        compute_metrics=mean_token_accuracy,
        preprocess_logits_for_metrics=argmax,
    ).evaluate()
    trl = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=SFTConfig(
            output_dir=str(tmp_path / "trl"),
            dataset_kwargs={"skip_prepare_dataset": True},
            **common,
        ),
        train_dataset=data,
        eval_dataset=data,
        data_collator=collator,
        processing_class=tokenizer,
    ).evaluate()
    assert 0.05 < ours["eval_mean_token_accuracy"] < 0.95  # a pretrained tiny model: neither
    assert ours["eval_mean_token_accuracy"] == pytest.approx(
        trl["eval_mean_token_accuracy"], abs=1e-6
    )
    # the same rows and tokens: TRL's loss (from its fused, chunked LM head) agrees to rounding
    assert ours["eval_loss"] == pytest.approx(trl["eval_loss"], rel=1e-3)
