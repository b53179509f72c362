"""Writing the prepared splits: packed (or padded) rows, DPO pairs or GRPO prompts as datasets
saved to disk, and the held-out conversations that tool-call scoring generates from."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeGuard

from kubetune_api.config import TrainerConfig
from kubetune_trainer.data.packing import pack, unpacked
from kubetune_trainer.data.pairs import EncodedPair
from kubetune_trainer.data.prompts import EncodedPrompt
from kubetune_trainer.data.tokenize import Encoded

EVAL_CONVERSATIONS = "eval_conversations.jsonl"


def _all_encoded(
    part: list[Encoded] | list[EncodedPair] | list[EncodedPrompt],
) -> TypeGuard[list[Encoded]]:
    return all(isinstance(p, Encoded) for p in part)


def write_split(
    name: str,
    part: list[Encoded] | list[EncodedPair] | list[EncodedPrompt],
    config: TrainerConfig,
    target: Path,
) -> Any:
    """Pack (or pad) one split, save it under target/name, and return its report entry."""
    import datasets

    training = config.training
    if training.objective == "grpo":  # rendered prompts: TRL's GRPOTrainer generates from them
        prompts = [asdict(p) for p in part]
        datasets.Dataset.from_list(prompts).save_to_disk(str(target / name))
        return {
            "samples": len(prompts),
            "rows": len(prompts),
            "tokens": sum(p["prompt_length"] for p in prompts),
        }
    if training.objective == "dpo":  # pairs: TRL's collator pads them per batch
        pairs = [asdict(p) for p in part]
        datasets.Dataset.from_list(pairs).save_to_disk(str(target / name))
        return {
            "samples": len(pairs),
            "rows": len(pairs),
            "tokens": sum(
                2 * len(p["prompt_ids"]) + len(p["chosen_ids"]) + len(p["rejected_ids"])
                for p in pairs
            ),
        }
    if not _all_encoded(part):
        raise TypeError(f"{name}: objective {training.objective} expects tokenized conversations")
    rows = pack(part, training.maxLength) if training.packing else unpacked(part)
    real = sum(len(r["input_ids"]) for r in rows)
    datasets.Dataset.from_list(rows).save_to_disk(str(target / name))
    return {
        "samples": len(part),
        "rows": len(rows),
        "tokens": real,
        "packingEfficiency": real / (len(rows) * training.maxLength),
    }


def write_conversations(part: list[Any], target: Path) -> dict[str, int]:
    """The held-out conversations as converted (messages, tools), one JSON object a line: what
    tool-call scoring generates from (`evaluation/`). Preference pairs have none."""
    chats = [c for c in part if isinstance(c, dict) and "messages" in c]
    with (target / EVAL_CONVERSATIONS).open("w", encoding="utf-8") as out:
        for chat in chats:
            out.write(json.dumps(chat, ensure_ascii=False) + "\n")
    return {"conversations": len(chats), "withTools": sum(1 for c in chats if c.get("tools"))}
