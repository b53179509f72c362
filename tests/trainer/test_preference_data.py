"""Preference records: every layout converts to the same pair (real public rows, TRL's own
examples), pairs that teach nothing are refused with their reason, and the token ids `prepare`
writes are the ones TRL's own DPOTrainer preprocessing makes from the same pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune_trainer.data.formats import FormatError
from kubetune_trainer.data.pairs import EncodedPair, PairEncoder
from kubetune_trainer.data.preference import convert_pair
from tests.support.families import tokenizer_for

FIXTURES = Path(__file__).parent / "fixtures"


def row(name: str) -> dict[str, Any]:
    first: dict[str, Any] = json.loads((FIXTURES / f"{name}.jsonl").read_text().splitlines()[0])
    return first


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_llamafactory_sharegpt_pair() -> None:
    record = row("dpo_sharegpt")
    pair = convert_pair(record, "sharegpt-preference")
    assert pair == {
        "prompt": [user(record["conversations"][0]["value"])],
        "chosen": [assistant(record["chosen"]["value"])],
        "rejected": [assistant(record["rejected"]["value"])],
    }


def test_llamafactory_system_turn_and_tools_column() -> None:
    record = {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"},
        ],
        "chosen": {"from": "gpt", "value": "Hello."},
        "rejected": {"from": "gpt", "value": "Go away."},
        "tools": json.dumps([{"name": "f", "parameters": {}}]),
    }
    pair = convert_pair(record, "sharegpt-preference")
    assert pair["prompt"] == [{"role": "system", "content": "Be brief."}, user("Hi")]
    assert pair["tools"] == [{"name": "f", "parameters": {}}]


def test_hh_rlhf_full_texts_split_like_trls_script() -> None:
    """TRL's examples/datasets/hh-rlhf-helpful-base.py: the shared start up to the last
    Assistant turn is the prompt, split into turns; what follows is each completion."""
    pair = convert_pair(row("hh_rlhf"), "hh-rlhf")
    assert [m["role"] for m in pair["prompt"]] == ["user", "assistant", "user", "assistant", "user"]
    assert pair["prompt"][0] == user("What kind of noises did dinosaurs make?")
    assert pair["prompt"][-1] == user("you cant read")
    assert pair["chosen"] == [assistant("You can read?")]
    assert pair["rejected"] == [assistant("there’s a lot of stuff humans don’t know")]


def test_ultrafeedback_binarized_takes_the_prompt_from_the_conversations() -> None:
    record = row("ultrafeedback_binarized")
    pair = convert_pair(record, "preference")
    assert pair == {
        "prompt": [user(record["prompt"])],
        "chosen": [record["chosen"][1]],
        "rejected": [record["rejected"][1]],
    }


# TRL's documented preference layouts (docs "Dataset formats"; `extract_prompt`'s docstring)
SKY = [user("What color is the sky?")]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {
                "prompt": SKY,
                "chosen": [assistant("It is blue.")],
                "rejected": [assistant("It is green.")],
            },
            {
                "prompt": SKY,
                "chosen": [assistant("It is blue.")],
                "rejected": [assistant("It is green.")],
            },
        ),
        (
            {
                "chosen": [*SKY, assistant("It is blue.")],
                "rejected": [*SKY, assistant("It is green.")],
            },
            {
                "prompt": SKY,
                "chosen": [assistant("It is blue.")],
                "rejected": [assistant("It is green.")],
            },
        ),
        (
            {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
            {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
        ),
        (
            {"chosen": "The sky is blue.", "rejected": "The sky is green."},
            {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
        ),
    ],
    ids=["conversational", "conversational-implicit", "text", "text-implicit"],
)
def test_trl_layouts(record: dict[str, Any], expected: dict[str, Any]) -> None:
    assert convert_pair(record, "preference") == expected


@pytest.mark.parametrize(
    ("fmt", "record", "reason"),
    [
        ("preference", {"prompt": SKY, "chosen": [assistant("Blue.")]}, "missing rejected"),
        ("preference", {"prompt": SKY, "chosen": [assistant("Blue.")], "rejected": [assistant("Blue.")]}, "identical completions"),
        ("preference", {"prompt": "Sky?", "chosen": "Blue.", "rejected": "Blue."}, "identical completions"),
        ("preference", {"prompt": SKY, "chosen": [assistant("Blue.")], "rejected": [assistant("  ")]}, "empty completion: rejected"),
        ("preference", {"chosen": "The sky is", "rejected": "The sky is green."}, "empty completion: chosen"),
        ("preference", {"prompt": SKY, "chosen": [assistant("A"), user("B")], "rejected": [assistant("C")]}, "completion not from the model"),
        ("hh-rlhf", {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello"}, "identical completions"),
        ("hh-rlhf", {"chosen": "Hi there", "rejected": "Hi you"}, "no '\\n\\nAssistant:' turn"),
        ("sharegpt-preference", {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Yo"}}, "missing rejected"),
        ("sharegpt-preference", {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "human", "value": "Yo"}, "rejected": {"from": "gpt", "value": "No"}}, "must be a model turn"),
    ],
)  # fmt: skip
def test_pairs_that_teach_nothing_are_refused(
    fmt: str, record: dict[str, Any], reason: str
) -> None:
    with pytest.raises(FormatError, match=reason.replace("\\", "\\\\").replace("'", "'")):
        convert_pair(record, fmt)


def trl_tokenized(tokenizer: Any, pair: dict[str, Any], tiny_model_dir: Path) -> dict[str, Any]:
    """The ids TRL's own DPOTrainer makes from a raw (untokenized) pair."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = DPOConfig(
        output_dir="/tmp/unused", use_cpu=True, bf16=False, report_to=[], max_length=None
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=args,
        train_dataset=datasets.Dataset.from_list([pair]),
        processing_class=tokenizer,
    )
    assert isinstance(trainer.train_dataset, datasets.Dataset)
    return dict(trainer.train_dataset[0])


@pytest.mark.parametrize("builtin", ["chatml", "llama-3", "gemma", "qwen3"])
def test_ids_match_trls_own_preprocessing(builtin: str, tiny_model_dir: Path) -> None:
    """Same prompt ids; each completion is TRL's up to its end-of-turn marker (TRL keeps the
    whitespace the template puts after it, which the model never generates)."""
    tokenizer = tokenizer_for(builtin)
    pair = convert_pair(row("hh_rlhf"), "hh-rlhf")
    (ours,) = PairEncoder(tokenizer, 4096).encode_batch([pair])
    assert isinstance(ours, EncodedPair)
    reference = trl_tokenized(tokenizer, pair, tiny_model_dir)
    assert ours.prompt_ids == reference["prompt_ids"]
    for side in ("chosen_ids", "rejected_ids"):
        mine, theirs = getattr(ours, side), reference[side]
        assert theirs[: len(mine)] == mine
        assert tokenizer.decode(theirs[len(mine) :]).strip() == ""
        assert tokenizer.eos_token in tokenizer.decode(mine) or builtin != "llama-3"


def test_text_pairs_end_with_eos_like_trl(tiny_model_dir: Path) -> None:
    tokenizer = tokenizer_for("chatml")
    pair = {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}
    (ours,) = PairEncoder(tokenizer, 4096).encode_batch([pair])
    assert isinstance(ours, EncodedPair)
    reference = trl_tokenized(tokenizer, pair, tiny_model_dir)
    assert (ours.prompt_ids, ours.chosen_ids, ours.rejected_ids) == (
        reference["prompt_ids"],
        reference["chosen_ids"],
        reference["rejected_ids"],
    )


def test_truncation_keeps_the_start_and_is_counted() -> None:
    tokenizer = tokenizer_for("chatml")
    pair = convert_pair(row("dpo_sharegpt"), "sharegpt-preference")
    (full,) = PairEncoder(tokenizer, 4096).encode_batch([pair])
    assert isinstance(full, EncodedPair)
    encoder = PairEncoder(tokenizer, len(full.prompt_ids) + 5)
    (short,) = encoder.encode_batch([pair])
    assert isinstance(short, EncodedPair)
    assert short.prompt_ids == full.prompt_ids
    assert (short.chosen_ids, short.rejected_ids) == (full.chosen_ids[:5], full.rejected_ids[:5])
    assert encoder.stats.truncated_samples == 1
    (gone,) = PairEncoder(tokenizer, len(full.prompt_ids)).encode_batch([pair])
    assert gone is None
