"""`builtin://tiny-llama`: a 2-layer Llama and a byte-level BPE tokenizer built on the spot.

For smoke tests and laptops: a tokenizer trained with the `tokenizers` library on a fixed
corpus, a model initialised from a config (seeded) and then briefly pretrained on the same
corpus as plain text — like a real base model, it knows some words, so LoRA has something to
adapt — both saved with `save_pretrained` and loaded through the same path-based code as any
model on a volume. Tests that need an untrained model pass `pretrain_steps=0`.

`model.tokenizer` replaces the trained tokenizer with a released family's (Llama 3's, Qwen
2's: kubetune_trainer.data.vocabularies), which llama.cpp's converter recognises, so the GGUF
export works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubetune_trainer.data.templates import builtin_template
from kubetune_trainer.data.vocabularies import family_tokenizer
from kubetune_trainer.runtime.llama_cpp import llama_cpp_dir

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

VERSION = "3"  # bump when the recipe changes: it names the cache folder
SPECIAL = ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]


def corpus() -> list[str]:
    words = (
        "the a is of and to in what colour plus minus sky grass snow coal blood blue "
        "green white black red one two three four five six seven eight nine ten answer "
        "short sentence user assistant system tool function call name arguments value"
    ).split()
    lines = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    lines += [
        f"What is {a} plus {b}? {a} plus {b} is {a + b}." for a in range(10) for b in range(10)
    ]
    lines += [
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        "0123456789 .,?!:;'\"{}[]()",
    ]
    return lines


def train_tokenizer(
    vocab_size: int = 512,
    special: tuple[str, ...] | list[str] = tuple(SPECIAL),
    template: str = "chatml",
    bos: str | None = "<s>",
    eos: str = "</s>",
    pad: str = "<pad>",
    add_bos: bool = False,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `corpus()`, its `special` tokens kept whole (a
    family's chat markers; BOS/EOS/padding among them); `add_bos` makes it put BOS in front of
    plain text, as Llama 3's and Gemma's tokenizers do (Qwen's has no BOS at all)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    if add_bos and bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A",
            pair=f"{bos} $A {bos} $B",
            special_tokens=[(bos, tok.token_to_id(bos))],
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        additional_special_tokens=[t for t in special if t not in (bos, eos, pad)],
    )
    fast.chat_template = builtin_template(template)
    return fast


def pretrain(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, steps: int) -> None:
    """A few hundred steps of next-token prediction on the corpus (seconds on a CPU)."""
    import torch

    batch = tokenizer(
        [t + tokenizer.eos_token for t in corpus()], padding=True, return_tensors="pt"
    )
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def llama(tokenizer: Any, hidden: int, intermediate: int, seed: int, pretrain_steps: int) -> Any:
    """A 2-layer Llama (GQA 4/2) sized to the tokenizer, seeded, optionally pretrained on the
    corpus so it has something to unlearn."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if pretrain_steps:
        pretrain(model, tokenizer, pretrain_steps)
    return model


def real_tokenizer(name: str) -> Any:
    """`model.tokenizer`: a released family's tokenizer, from llama.cpp's reference
    vocabularies (kubetune_trainer.data.vocabularies)."""

    models = llama_cpp_dir(f"model.tokenizer is {name}") / "models"
    return family_tokenizer(models, name)


def build_tiny_llama(
    path: str | os.PathLike[str],
    seed: int = 0,
    pretrain_steps: int = 120,
    tokenizer_name: str | None = None,
) -> Path:
    """Write the tiny model and tokenizer to `path` (atomically) and return it. With
    `tokenizer_name` (`model.tokenizer`) the tokenizer is a released family's and the embedding
    has its whole vocabulary (128k-152k rows, 250 times the trained tokenizer's): pretraining
    would then take minutes and gigabytes on a CPU, so that model starts from its random
    weights (`pretrain_steps` counts for the trained tokenizer only)."""
    target = Path(path)
    if tokenizer_name is None:
        tokenizer = train_tokenizer()
        model = llama(tokenizer, 64, 176, seed, pretrain_steps)
    else:
        tokenizer = real_tokenizer(tokenizer_name)
        model = llama(tokenizer, 64, 176, seed, 0)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():  # another process won the race; theirs is identical
        import shutil

        shutil.rmtree(tmp)
    else:
        tmp.rename(target)
    return target
