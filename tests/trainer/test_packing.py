"""Packing: best-fit-decreasing fills rows; position ids restart per sample; neither loss nor
attention crosses a sample boundary (checked on a real model, not just on the tensors)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from kubetune_trainer.data.collate import PackedCollator
from kubetune_trainer.data.packing import best_fit_decreasing, pack
from kubetune_trainer.data.tokenize import IGNORE, Encoded


def test_bins_respect_capacity_and_place_every_sample_once() -> None:
    rng = random.Random(0)
    lengths = [min(512, int(rng.paretovariate(1.2) * 20)) for _ in range(2000)]
    bins = best_fit_decreasing(lengths, 512)
    placed = sorted(i for b in bins for i in b)
    assert placed == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 512 for b in bins)
    assert sum(lengths) / (len(bins) * 512) > 0.97


def test_best_fit_finds_the_tight_packing() -> None:
    assert sorted(map(sorted, best_fit_decreasing([6, 4, 5, 5, 3, 7], 10))) == [
        [0, 1],
        [2, 3],
        [4, 5],
    ]


def test_oversized_sample_is_an_error() -> None:
    with pytest.raises(ValueError, match="more than the row capacity"):
        best_fit_decreasing([11], 10)


def sample(ids: list[int]) -> Encoded:
    return Encoded(input_ids=ids, labels=list(ids))


def test_rows_restart_positions_and_mask_boundaries() -> None:
    rows = pack([sample([1, 2, 3]), sample([4, 5]), sample([6, 7, 8, 9])], capacity=9)
    assert len(rows) == 1
    row = rows[0]
    assert row["input_ids"] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert row["position_ids"] == [0, 1, 2, 0, 1, 0, 1, 2, 3]
    # the first token of each sample is never a target: nothing is predicted across a boundary
    assert [i for i, label in enumerate(row["labels"]) if label == IGNORE] == [0, 3, 5]


def test_collator_pads_as_its_own_segment_and_counts_real_tokens() -> None:
    collate = PackedCollator(pad_token_id=0, multiple_of=4)
    batch = collate(
        [
            {"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7], "position_ids": [0, 1, 2]},
            {"input_ids": [8], "labels": [IGNORE], "position_ids": [0]},
        ]
    )
    assert batch["input_ids"].shape == (2, 4)
    assert batch["position_ids"][1].tolist() == [0, 0, 1, 2]
    assert (batch["labels"][:, 3] == IGNORE).all()
    assert "attention_mask" not in batch
    assert collate.take_real_tokens() == 4 and collate.take_real_tokens() == 0


def test_no_attention_or_loss_crosses_samples_in_a_real_model(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from kubetune_trainer.training.modeling import prepare_for_training

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    prepare_for_training(model)  # what the trainer does: without it the cache defeats packing
    a, b = [10, 11, 12, 13, 14], [20, 21, 22, 23]
    (row,) = pack([sample(a), sample(b)], capacity=16)
    batch = PackedCollator(pad_token_id=0, multiple_of=1)([row])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        alone = {tuple(s): model(input_ids=torch.tensor([s])).logits[0] for s in (a, b)}
    first, second = (a, b) if row["input_ids"][: len(a)] == a else (b, a)
    torch.testing.assert_close(packed[: len(first)], alone[tuple(first)], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[len(first) :], alone[tuple(second)], atol=1e-5, rtol=1e-4)

    with torch.no_grad():
        loss_packed = model(**batch).loss
        losses = [
            model(input_ids=torch.tensor([s]), labels=torch.tensor([s])).loss
            for s in (first, second)
        ]
    expected = (losses[0] * (len(first) - 1) + losses[1] * (len(second) - 1)) / (
        len(a) + len(b) - 2
    )
    torch.testing.assert_close(loss_packed, expected, atol=1e-5, rtol=1e-4)
