"""Real tokenizers for tests, offline: llama.cpp's vocab-only GGUF files as Hugging Face tokenizers.

The pinned llama-cpp-python sdist ships `models/ggml-vocab-<name>.gguf` (the tokenizers of Llama 3,
Qwen 2, Gemma 4, Phi-3, Command-R, …) with `.inp`/`.out` files: inputs and the token ids that the
original Hugging Face tokenizer gives them. `hack/llama-cpp.sh` unpacks them (hash-checked, once);
transformers reads a GGUF tokenizer with `gguf_file=`. A vocabulary is used only when it gives
every `.out` line; the others are listed in `UNFAITHFUL` with the reason, and a test checks that
each of those still differs (so the list shrinks when transformers learns them).
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.tiers import unavailable

ROOT = Path(__file__).resolve().parents[2]
SEPARATOR = "\n__ggml_vocab_test__\n"

# Vocabularies whose token ids the loaded tokenizer reproduces for every `.out` line.
FAITHFUL = ("llama-bpe", "qwen2", "qwen35", "gemma-4", "phi-3", "gpt-2")

# Vocabularies kubetune's tests do not use, and why.
UNFAITHFUL: dict[str, str] = {
    "command-r": "transformers' GGUF reader has no split for pre-tokenizer 'command-r': it falls "
    "back to GPT-2's, which splits '4 ½' differently",
    "deepseek-llm": "no split for pre-tokenizer 'deepseek-llm' in transformers' GGUF reader",
    "deepseek-coder": "no split for pre-tokenizer 'deepseek-coder' in transformers' GGUF reader",
    "refact": "no split for pre-tokenizer 'refact' in transformers' GGUF reader",
    "starcoder": "no split for pre-tokenizer 'starcoder' in transformers' GGUF reader",
    "falcon": "no split for pre-tokenizer 'falcon' in transformers' GGUF reader",
    "mpt": "no split for pre-tokenizer 'mpt' in transformers' GGUF reader",
    "llama-spm": "SentencePiece spaces: the converted tokenizer merges leading spaces differently",
}
NOT_CHECKABLE: dict[str, str] = {
    "aquila": "no .inp/.out reference ids",
    "baichuan": "no .inp/.out reference ids",
    "gpt-neox": "no .inp/.out reference ids",
    "nomic-bert-moe": "no .inp/.out reference ids",
    "bert-bge": "WordPiece: transformers reads no 'bert' tokenizer from GGUF",
}

# The built-in templates' families and their real vocabularies. Gemma's built-ins have none:
# the sdist ships Gemma 4's vocabulary only, which has no `<start_of_turn>`/`<end_of_turn>`.
FAMILY_VOCAB = {
    "llama-3": "llama-bpe",
    "llama-3.1": "llama-bpe",
    "qwen": "qwen2",
    "qwen2.5": "qwen2",
    "qwen3": "qwen2",
    "chatml": "qwen2",
}


@cache
def llama_cpp_unpacked() -> Path | str:
    """The llama.cpp tree hack/llama-cpp.sh unpacks (it downloads the sdist the first time and
    prints the folder at once afterwards), or why it cannot be had."""
    out = subprocess.run([str(ROOT / "hack" / "llama-cpp.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        return (
            f"hack/llama-cpp.sh failed (exit {out.returncode}) to unpack llama.cpp's "
            f"vocabularies: {out.stderr[-500:]}"
        )
    return Path(out.stdout.strip())


def llama_cpp_models(tier: str = "trainer") -> Path:
    """`models/` of that tree; without it the tier is unavailable (skipped locally, failed in
    CI)."""
    unpacked = llama_cpp_unpacked()
    if isinstance(unpacked, str):
        unavailable(tier, unpacked)
    return unpacked / "models"


def reference_cases(name: str) -> list[tuple[str, list[int]]]:
    """The `.inp` texts and `.out` ids, read as llama.cpp's test-tokenizer-0 reads them."""
    base = llama_cpp_models() / f"ggml-vocab-{name}.gguf"
    raw = Path(f"{base}.inp").read_bytes().decode("utf-8")
    if raw.endswith(SEPARATOR):
        raw = raw[: -len(SEPARATOR)]
    inputs = raw.split(SEPARATOR)
    lines = Path(f"{base}.out").read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(inputs) != len(lines):
        raise ValueError(f"{name}: {len(inputs)} inputs but {len(lines)} reference lines")
    return [
        (text, [int(t) for t in line.split()]) for text, line in zip(inputs, lines, strict=True)
    ]


@cache
def vocabulary(name: str) -> Any:
    """The tokenizer of `ggml-vocab-<name>.gguf`, read by transformers as the trainer reads it
    for `model.tokenizer` (one per session)."""
    from kubetune_trainer.data.vocabularies import read_vocabulary

    return read_vocabulary(llama_cpp_models(), name)


def with_template(name: str, template: str) -> Any:
    """A copy of the vocabulary's tokenizer that renders `template`."""
    import copy

    tokenizer = copy.copy(vocabulary(name))
    tokenizer.chat_template = template
    return tokenizer
