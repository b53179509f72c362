"""Preprocessing throughput per core: kubetune's template + tokenize + role mask + pack against
raw batched tokenization of the same rendered texts (the floor any preprocessing pays).

    python bench/preprocess_throughput.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import chat_records, tiny_model

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core, both sides

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.packing import pack
from kubetune_trainer.data.tokenize import Encoded, Encoder

N = 4000


def main() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model())
    records = chat_records(N, seed=1)
    conversations = [convert(r, "messages") for r in records]

    started = time.perf_counter()
    encoder = Encoder(tokenizer, ["assistant"], 4096)
    samples = []
    for i in range(0, N, 512):
        samples += [
            s for s in encoder.encode_batch(conversations[i : i + 512]) if isinstance(s, Encoded)
        ]
    rows = pack(samples, 4096)
    ours = time.perf_counter() - started
    tokens = sum(len(s.input_ids) for s in samples)

    started = time.perf_counter()
    texts = [tokenizer.apply_chat_template(c["messages"], tokenize=False) for c in conversations]
    rendered = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, N, 512):
        tokenizer(texts[i : i + 512], add_special_tokens=False)
    raw = time.perf_counter() - started

    print(f"{N} conversations, {tokens:,} tokens, {len(rows)} packed rows, one core")
    print(f"kubetune (template + tokenize + mask + pack): {tokens / ours:12,.0f} tokens/s")
    print(
        f"render once + tokenize (no masks, no packing): {tokens / (rendered + raw):12,.0f} tok/s"
    )
    print(f"raw batched tokenization (texts pre-rendered): {tokens / raw:12,.0f} tokens/s")
    print(f"ratio kubetune/raw: {raw / ours:.2f}x (preprocessing runs once, cached by fingerprint)")


if __name__ == "__main__":
    main()
