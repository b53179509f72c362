"""`model.tokenizer` of `builtin://tiny-llama`: released tokenizers from llama.cpp's vocabularies.

The pinned llama-cpp-python sdist ships `models/ggml-vocab-<name>.gguf`, the tokenizers of
released model families, beside the converter that GGUF export runs (hack/llama-cpp.sh unpacks
both; the trainer image carries them in /opt/llama.cpp). transformers reads a GGUF tokenizer with
`gguf_file=`; tests/trainer/test_vocabularies.py checks every reference line llama.cpp ships
with these files against it, and tests/trainer/test_builtin_real_tokenizer.py checks that
llama.cpp's converter recognises the saved tokenizer and tokenizes as it does.

The GGUF files hold the vocabulary, merges and pre-tokenizer, not everything of the released
`tokenizer.json`/`tokenizer_config.json`; what they lack is set here from the released files
(see `FAMILIES`), so a tiny model saved with one tokenizes, adds BOS and ends turns as the
family's instruct model does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune_trainer.data.templates import builtin_template


@dataclass(frozen=True)
class Family:
    template: str
    """The built-in chat template the tokenizer carries (`chat_template.jinja`)."""
    bos: str | None
    """BOS token, as the released tokenizer_config.json has it (Qwen's has none)."""
    eos: str
    """EOS token of the instruct model: the end-of-turn marker its template writes."""
    pad: str | None
    """Padding token of the released tokenizer (Llama 3 has none: the trainer pads with EOS)."""
    add_bos: bool
    """The released tokenizer puts BOS in front of plain text (a TemplateProcessing step)."""


# From the released tokenizer files of Meta-Llama-3-8B-Instruct and Qwen2.5-7B-Instruct.
FAMILIES: dict[str, Family] = {
    "llama-bpe": Family("llama-3", "<|begin_of_text|>", "<|eot_id|>", None, add_bos=True),
    "qwen2": Family("qwen2.5", None, "<|im_end|>", "<|endoftext|>", add_bos=False),
}


def read_vocabulary(models: Path, name: str) -> Any:
    """`models/ggml-vocab-<name>.gguf` as transformers reads it, with the one flag the GGUF
    file cannot carry: Llama 3's tokenizer.json sets `ignore_merges` (a word in the vocabulary
    is one token even where no merge sequence reaches it, as ' Việt')."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(
        str(models), gguf_file=f"ggml-vocab-{name}.gguf"
    )
    if name == "llama-bpe":
        tokenizer.backend_tokenizer.model.ignore_merges = True
    return tokenizer


def family_tokenizer(models: Path, name: str) -> Any:
    """The vocabulary with its family's special tokens, BOS rule and chat template, as the
    released instruct tokenizer has them. transformers' GGUF reader appends an
    `<|endoftext|>` token past the vocabulary when the file names no unknown token; the
    released tokenizer has no such token, so it is dropped."""
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    family = FAMILIES[name]
    read = read_vocabulary(models, name)
    data = json.loads(read.backend_tokenizer.to_str())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["id"] < read.vocab_size]
    backend = Tokenizer.from_str(json.dumps(data))
    if family.add_bos and family.bos is not None:
        backend.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A",
            pair=f"{family.bos} $A {family.bos} $B",
            special_tokens=[(family.bos, backend.token_to_id(family.bos))],
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=family.bos, eos_token=family.eos, pad_token=family.pad
    )
    tokenizer.chat_template = builtin_template(family.template)
    return tokenizer
