"""Preprocessing throughput with real tokenizers: kubetune's template + tokenize + role mask +
pack, as `prepare` runs it (one worker per core: data/workers.py), against raw batched
tokenization of the same rendered texts (`tokenizer(texts)`, the floor any preprocessing pays;
the fast tokenizer spreads a batch over every core itself). Target: ≥ 0.8× raw with all cores.

Tokenizers: Llama 3's (llama-bpe, the llama-3 template) and Qwen 2's (qwen2, the qwen2.5
template), llama.cpp's reference vocabularies unpacked by hack/llama-cpp.sh. Conversations:
short single-turn chats (long-tailed lengths), 8-exchange chats with a system prompt, and tool
chats (3 rounds of question, call, result, reply). Each side is also timed on one core, and
each figure is the best of `--repeat` runs, the two sides taking turns.

    python bench/preprocess_throughput.py [--conversations 2000] [--vocab qwen2] [--repeat 3]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.vocabularies
sys.path.insert(0, str(Path(__file__).parent))
from common import chat_records, multi_turn_records, tool_records

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.packing import pack
from kubetune_trainer.data.templates import builtin_template
from kubetune_trainer.data.tokenize import Encoded, Encoder
from kubetune_trainer.data.workers import BATCH, cores, encode_batches, split
from tests.support.vocabularies import llama_cpp_unpacked, with_template

TEMPLATES = {"llama-bpe": "llama-3", "qwen2": "qwen2.5"}
KINDS = {
    "short": lambda n: chat_records(n, seed=1),
    "multi-turn": lambda n: multi_turn_records(n // 4, seed=2),
    "tools": lambda n: tool_records(n // 2, seed=3),
}


def kubetune(
    tokenizer: Any, conversations: list[dict[str, Any]], workers: int
) -> tuple[float, int]:
    """Seconds for prepare's path (a fresh encoder, batches on `workers` processes, packing),
    and the tokens it made."""
    started = time.perf_counter()
    encoder = Encoder(tokenizer, ["assistant"], 1 << 20)
    batches = split(conversations, workers)  # as prepare splits them
    samples = [
        s
        for batch in encode_batches(encoder, batches, min(workers, len(batches)))
        for s in batch
        if s is not None
    ]
    assert all(isinstance(s, Encoded) for s in samples)
    pack([s for s in samples if isinstance(s, Encoded)], 4096)
    return time.perf_counter() - started, sum(len(s.input_ids) for s in samples)


def raw(tokenizer: Any, texts: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = 0
    for i in range(0, len(texts), BATCH):
        tokens += sum(map(len, tokenizer(texts[i : i + BATCH], add_special_tokens=False).input_ids))
    return time.perf_counter() - started, tokens


def measure(vocab: str, kind: str, n: int, repeat: int) -> dict[str, Any]:
    tokenizer = with_template(vocab, builtin_template(TEMPLATES[vocab]))
    conversations = [convert(r, "messages") for r in KINDS[kind](n)]
    rendering = float("inf")  # one core: what any template-based path pays
    for _ in range(repeat):
        started = time.perf_counter()
        texts = [
            tokenizer.apply_chat_template(c["messages"], tools=c.get("tools"), tokenize=False)
            for c in conversations
        ]
        rendering = min(rendering, time.perf_counter() - started)
    row: dict[str, Any] = {"vocab": vocab, "kind": kind, "conversations": len(conversations)}
    for label, workers, parallel in (("oneCore", 1, "false"), ("allCores", cores(), "true")):
        os.environ["TOKENIZERS_PARALLELISM"] = parallel  # the raw side's threads
        raw_seconds = ours = float("inf")
        for _ in range(repeat):  # the best of each side, taken in turns (a busy machine)
            raw_once, tokens = raw(tokenizer, texts)
            ours_once, made = kubetune(tokenizer, conversations, workers)
            assert made == tokens, f"{vocab} {kind}: {made} tokens with masks, {tokens} without"
            raw_seconds, ours = min(raw_seconds, raw_once), min(ours, ours_once)
        row["tokens"] = tokens
        row[label] = {
            "cores": workers,
            "kubetuneTokensPerSecond": round(tokens / ours),
            "rawTokensPerSecond": round(tokens / raw_seconds),
            "ratio": round(raw_seconds / ours, 3),
        }
        if workers == 1:  # rendering once, then raw tokenization: no masks, no packing
            row[label]["renderAndRawTokensPerSecond"] = round(tokens / (rendering + raw_seconds))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--vocab", action="append", choices=sorted(TEMPLATES))
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best counts")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    unpacked = llama_cpp_unpacked()
    if isinstance(unpacked, str):
        print(f"preprocess_throughput: {unpacked}", file=sys.stderr)
        return 1
    rows = [
        measure(vocab, kind, args.conversations, args.repeat)
        for vocab in args.vocab or sorted(TEMPLATES)
        for kind in KINDS
    ]
    print(f"{'vocabulary':10} {'conversations':>15} {'tokens':>9}  1 core (floor)   all cores")
    for r in rows:
        one, every = r["oneCore"], r["allCores"]
        floor = one["renderAndRawTokensPerSecond"] / one["rawTokensPerSecond"]
        print(
            f"{r['vocab']:10} {r['kind'] + ' ' + str(r['conversations']):>15} {r['tokens']:>9,}"
            f"  {one['ratio']:5.2f}x ({floor:.2f}x)  {every['ratio']:5.2f}x"
            f" ({every['kubetuneTokensPerSecond']:,} vs {every['rawTokensPerSecond']:,} tokens/s"
            f" on {every['cores']} cores)"
        )
    for label in ("oneCore", "allCores"):  # over all rows: total raw seconds ÷ total ours
        raw_s = sum(r["tokens"] / r[label]["rawTokensPerSecond"] for r in rows)
        ours_s = sum(r["tokens"] / r[label]["kubetuneTokensPerSecond"] for r in rows)
        print(f"overall, {label}: {raw_s / ours_s:.2f}x raw tokenization, with masks")
    print("(floor: rendering once, then raw tokenization, no masks, on one core)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
