"""What a job reads: the base model, its datasets and how they are templated.

Torch-free, as `config.py` (the operator embeds these sections in the FineTuneJob API).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kubetune_api.k8s_syntax import DNS1035Label, DNSSubdomain
from kubetune_api.s3_spec import S3Connection
from kubetune_api.schema import Model, SecretKeyRef

DatasetFormat = Literal[
    "messages",
    "sharegpt",
    "alpaca",
    "xlam",
    "glaive",
    "text",
    "preference",
    "hh-rlhf",
    "sharegpt-preference",
    "prompts",
]
PREFERENCE_FORMATS = ("preference", "hh-rlhf", "sharegpt-preference")
# What `objective: grpo` can read: prompts, or conversations cut before their last assistant turn
PROMPT_FORMATS = ("prompts", "messages", "sharegpt", "alpaca", "xlam", "glaive")
BuiltinTemplate = Literal[
    "llama-3", "llama-3.1", "chatml", "gemma", "gemma-2", "gemma-3", "qwen", "qwen2.5", "qwen3"
]
# Real tokenizers `builtin://tiny-llama` can take: llama.cpp's reference vocabularies (the
# pinned llama-cpp-python sdist's models/ggml-vocab-<name>.gguf), those that transformers reads
# back exactly (tests/support/vocabularies.py checks every reference line).
BuiltinTokenizer = Literal["llama-bpe", "qwen2"]
Artifact = Literal["final", "latestCheckpoint"]
# hf://, pvc://, s3:// (its naming rules: s3_spec), the built-in tiny model, or a path (any
# other `scheme://` is refused).
SOURCE_PATTERN = (
    r"^(hf://[^/]+/.+|pvc://[a-z0-9][-a-z0-9.]*(/.*)?|s3://[^/]+(/.*)?|builtin://tiny-llama|[^:]+)$"
)


class FromJob(Model):
    """Start from what another FineTuneJob produced (chained stages)."""

    name: DNS1035Label
    """Name of the FineTuneJob in the same namespace (not this job's own)."""
    artifact: Artifact = "final"
    """`final`: its exported output (merged model for full fine-tuning, else the adapter merged
    into its base), from the claim, or, when not there and that job uploaded its outputs
    (`output.uri`), from the bucket with that job's connection. `latestCheckpoint`: its newest
    complete checkpoint, from the claim."""
    claimName: DNSSubdomain | None = None
    """PersistentVolumeClaim holding that job's workspace. Defaults to this job's own workspace
    claim, which is the case when every stage names the same `storage.existingClaim`."""


class ModelSource(Model):
    """The base model."""

    source: str | None = Field(default=None, pattern=SOURCE_PATTERN, max_length=2048)
    """Where the model comes from: `hf://org/name` (the Hugging Face Hub), `pvc://claim/path`
    (a folder on a PersistentVolumeClaim), a path (absolute, or relative to the workspace
    volume in a cluster and to the FineTuneJob file with `kubetune run`), or
    `builtin://tiny-llama` (a tiny random model built on the spot, for smoke tests), or
    `s3://bucket/prefix` (every object under the prefix, downloaded into the workspace cache,
    verified and cached by ETag; docs/object-storage.md). Set this or `fromJob`."""
    tokenizer: BuiltinTokenizer | None = None
    """Only with `builtin://tiny-llama`: a released family's tokenizer instead of the small
    one trained on the spot, so that GGUF export works (llama.cpp's converter knows it) and
    llama.cpp tokenizes as training did. `llama-bpe` (Llama 3's, with the `llama-3` chat
    template) or `qwen2` (Qwen 2's, with `qwen2.5`). The model stays tiny, but its embedding
    has the whole vocabulary and starts untrained."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of an `hf://` source; pin a commit to reproduce."""
    fromJob: FromJob | None = None
    """Start from another FineTuneJob's output or latest checkpoint. Set this or `source`."""
    tokenSecretRef: SecretKeyRef | None = None
    """Secret holding a Hugging Face token for gated or private models. Passed to the pods as the
    environment variable HF_TOKEN through a secretKeyRef; it never enters the trainer config."""
    trustRemoteCode: bool = False
    """Run Python code shipped with the model. Off by default: enable only for trusted sources."""
    attention: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    """Attention implementation. `auto` takes flash-attention when installed, else PyTorch SDPA."""
    s3: S3Connection | None = None
    """Connection for this s3:// location instead of the job's `s3` (replaces it whole,
    credentials included)."""


class ChatTemplate(Model):
    """How conversations become text. Leave empty to use the tokenizer's own template."""

    builtin: BuiltinTemplate | None = None
    """A model family's official chat template, shipped with kubetune: `llama-3` (Llama 3.0),
    `llama-3.1` (3.1 and later, with its tool format), `gemma` (= `gemma-3`; Gemma 2's output
    plus a system prompt folded into the first user turn), `gemma-2` (refuses system turns),
    `qwen` (= `qwen2.5`, with its default system prompt), `qwen3` (tools, `<think>` reasoning),
    `chatml`. `llama-3`, `gemma*` and `chatml` have no tool syntax of their own: tools, tool calls
    and results are rendered in kubetune's documented convention (Qwen 2.5's)."""
    jinja: str | None = Field(default=None, max_length=65536)
    """An inline Jinja chat template (the `chat_template` format of transformers)."""


class DatasetSource(Model):
    """One dataset and how to read it."""

    source: str = Field(pattern=SOURCE_PATTERN, max_length=2048)
    """`hf://org/name`, `pvc://claim/path/file.jsonl`, `s3://bucket/key` (an object, or every
    object under a prefix), or a path to a JSONL/JSON/Parquet file, a folder of them, or a
    dataset saved with `save_to_disk`."""
    revision: str | None = None
    """Hub revision for `hf://` sources."""
    split: str = "train"
    """Split to read (also accepts slices such as `train[:10%]`)."""
    format: DatasetFormat = "messages"
    """Record layout: `messages` (OpenAI-style, tool calls included), `sharegpt`, `alpaca`,
    `xlam` and `glaive` (function calling), or `text` (plain language modelling). Preference
    pairs (for `training.objective: dpo`): `preference` (TRL's `prompt`/`chosen`/`rejected`, as
    text or conversations, the prompt explicit or the shared start of both; also the
    UltraFeedback-binarized layout), `hh-rlhf` (Anthropic HH `chosen`/`rejected` full texts of
    `Human:`/`Assistant:` turns) or `sharegpt-preference` (LLaMA-Factory: `conversations` plus
    one `chosen` and one `rejected` turn). Prompts (for `training.objective: grpo`): `prompts`
    (`prompt` messages up to the generation point, optional `tools`, every other column a
    reference field for the rewards), or any conversation format, cut before its last assistant
    turn, which becomes the reference (`reference_tool_calls`, `reference_text`)."""
    fields: dict[str, Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=dict)
    """Column renames from the format's names to this dataset's: `{messages: conversations}`."""
    sampleLimit: int | None = Field(default=None, ge=1)
    """Use at most this many records (after shuffling with the training seed)."""
    tokenSecretRef: SecretKeyRef | None = None
    """Secret with a Hugging Face token for a gated dataset (see `model.tokenSecretRef`)."""
    s3: S3Connection | None = None
    """Connection for this s3:// location instead of the job's `s3` (replaces it whole,
    credentials included)."""


Role = Literal["system", "user", "assistant", "tool"]


def _assistant_only() -> list[Role]:
    return ["assistant"]


class DatasetSpec(Model):
    """Training data: one or more datasets, mixed, templated and tokenized the same way."""

    sources: list[DatasetSource] = Field(min_length=1, max_length=32)
    """Datasets to train on, concatenated in order."""
    chatTemplate: ChatTemplate = Field(default_factory=ChatTemplate)
    """Chat template applied to every conversation."""
    trainOnRoles: list[Role] = Field(default_factory=_assistant_only, min_length=1, max_length=4)
    """Roles whose tokens carry loss; every other token is masked out of the labels."""
    evalFraction: float = Field(default=0.0, ge=0.0, le=0.5)
    """Fraction of records held out for evaluation (0 = none). Set this or `validation`."""
    validation: DatasetSource | None = None
    """A separate validation set (any source and format), prepared exactly as the training data
    (same template, masks and packing). Set this or `evalFraction`."""

    @property
    def all_sources(self) -> list[DatasetSource]:
        """The training sources, then the validation source: the order of `paths.datasets`."""
        return [*self.sources, *([self.validation] if self.validation else [])]

    @property
    def has_held_out(self) -> bool:
        return self.evalFraction > 0 or self.validation is not None
