"""A tiny Llama with a SentencePiece tokenizer, for the GGUF export tests.

`builtin://tiny-llama`'s byte-level BPE tokenizer is trained on the spot, and llama.cpp's
converter only accepts BPE tokenizers it knows by a hash of their output on a fixed text
(released models' tokenizers). A SentencePiece model (`tokenizer.model`, Llama 2's kind) is
converted as it is, scores and all, and llama.cpp's SPM tokenizer reproduces it. Sizes are
multiples of 256 so that K-quants (256-value blocks) apply to every matrix instead of falling
back to other types.
"""

from __future__ import annotations

from pathlib import Path

from kubetune_trainer.data.templates import builtin_template
from kubetune_trainer.storage.tiny import corpus, llama
from tests.support import seed_data

SPECIAL = ["<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]


def train_spm(folder: Path, vocab_size: int = 640) -> Path:
    import json

    import sentencepiece as spm

    rows = [json.loads(line) for line in seed_data.glaive().decode().splitlines()[:40]]
    lines = corpus() + [rows[0]["system"]] + [row["chat"] for row in rows]
    prefix = folder / "spm"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(prefix),
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,  # Llama 2's settings: no unknown bytes, digits one by one
        split_digits=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        add_dummy_prefix=False,  # see build_tiny_llama_spm
        user_defined_symbols=SPECIAL,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        num_threads=1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def build_tiny_llama_spm(path: Path, seed: int = 0, pretrain_steps: int = 30) -> Path:
    from transformers import LlamaTokenizer

    path.mkdir(parents=True)
    model_file = train_spm(path)
    model_file.with_suffix(".vocab").unlink()
    model_file.rename(path / "tokenizer.model")
    # transformers converts the SentencePiece model to its fast tokenizer (tokenizer.json);
    # tokenizer.model stays beside it, as in a Llama 2 checkpoint. No dummy-prefix space (as
    # Gemma's tokenizer): with one, transformers 5 (legacy=False) puts it at the start of the
    # text only, llama.cpp (Llama 2's legacy rule) after every special token as well, so the
    # two would tokenize chat prompts differently.
    tokenizer = LlamaTokenizer.from_pretrained(
        path, pad_token="<pad>", additional_special_tokens=SPECIAL, add_prefix_space=False
    )
    tokenizer.chat_template = builtin_template("chatml")
    model = llama(tokenizer, 256, 512, seed, pretrain_steps)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
