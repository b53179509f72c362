"""Shared bench inputs: a seeded long-tailed chat dataset and the tiny model."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

WORDS = (
    "the sky is blue and grass is green while snow is white so what colour is coal "
    "one two three four five six seven eight nine ten plus minus answer"
).split()


def long_tailed_lengths(n: int, seed: int = 0, cap: int = 2000) -> list[int]:
    """Token-ish lengths with a heavy tail (log-normal): most short, a few long."""
    rng = random.Random(seed)
    return [max(8, min(cap, int(rng.lognormvariate(4.6, 0.9)))) for _ in range(n)]


def chat_records(n: int, seed: int = 0, cap_words: int = 400) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for length in long_tailed_lengths(n, seed, cap_words):
        question = " ".join(rng.choice(WORDS) for _ in range(max(3, length // 4)))
        answer = " ".join(rng.choice(WORDS) for _ in range(max(3, length - length // 4)))
        records.append(
            {
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return records


def tiny_model() -> Path:
    from kubetune_trainer.tiny import build_tiny_llama

    root = Path(tempfile.gettempdir()) / "kubetune-bench"
    root.mkdir(exist_ok=True)
    path = root / "tiny-llama"
    return path if path.exists() else build_tiny_llama(path)
