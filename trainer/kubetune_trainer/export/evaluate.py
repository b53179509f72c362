"""Tool-call scoring after the export: the exported model (and, with `evaluation.baseline`, the
base model) generates every held-out tool turn, and rank 0 reports the scores.

Runs after `export`, so the outputs are already complete; nothing here raises. Each rank
scores its shard and catches its own failure, so every rank reaches the gather; rank 0 writes
the per-turn results (`<output>/evaluation/tool_calls*.jsonl`), adds the scores to the manifest
and reports them to the status (`evaluation.toolCalls`, `evaluation.baselineToolCalls`), or
reports why it could not (`evaluation.error`).
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubetune_api.config import TrainerConfig
from kubetune_trainer.data.prepared import PreparedManifest
from kubetune_trainer.data.splits import EVAL_CONVERSATIONS
from kubetune_trainer.data.tool_calls import Syntax, parse, score_turn, summarise, syntax_of
from kubetune_trainer.evaluation.generation import (
    Turn,
    carries_tools,
    gather,
    generate,
    shard,
    turns_of,
)
from kubetune_trainer.runtime.distributed import initialized
from kubetune_trainer.runtime.log import log
from kubetune_trainer.training.modeling import DTYPES, quantization_config

SAMPLES = "tool_calls.jsonl"
BASELINE_SAMPLES = "tool_calls.baseline.jsonl"


def held_out_conversations(prepared: PreparedManifest) -> list[dict[str, Any]]:
    path = Path(prepared.get("dataset") or "") / EVAL_CONVERSATIONS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def wanted(config: TrainerConfig, conversations: list[dict[str, Any]]) -> bool:
    """`evaluation.toolCalls`, or by default: whether the held-out data carries tools."""
    if config.evaluation.toolCalls is not None:
        return config.evaluation.toolCalls
    return any(carries_tools(c) for c in conversations)


def records_of(turns: list[Turn], syntax: Syntax, model: str) -> list[dict[str, Any]]:
    records = []
    for turn in turns:
        record: dict[str, Any] = {
            "model": model,
            "conversation": turn.conversation,
            "turn": turn.turn,
            "expected": turn.expected,
        }
        if turn.error is not None or turn.reply is None:
            record["error"] = turn.error or "no reply"
        else:
            parsed = parse(turn.reply, syntax)
            record.update(
                reply=turn.reply,
                calls=parsed.calls,
                errors=parsed.errors,
                **score_turn(turn.expected, parsed),
            )
        records.append(record)
    return records


def load_trained(config: TrainerConfig, prepared: PreparedManifest, out: Path) -> Any:
    """What the export wrote: the full model, or the base with the adapter (peft), on this
    rank's device, in the training precision (quantized again for QLoRA)."""
    from transformers import AutoModelForCausalLM, PreTrainedModel

    device = _device(config)
    kwargs = {
        "dtype": DTYPES[config.training.precision],
        "trust_remote_code": config.model.trustRemoteCode,
        "device_map": {"": device},
    }
    if config.method.type == "full":
        merged: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
            str(out / "merged"), **kwargs
        )
        return merged.eval()
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(
        prepared["model"], quantization_config=quantization_config(config.method), **kwargs
    )
    return PeftModel.from_pretrained(base, str(out / "adapter")).eval()


def load_base(config: TrainerConfig, prepared: PreparedManifest) -> Any:
    from transformers import AutoModelForCausalLM, PreTrainedModel

    base: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
        prepared["model"],
        dtype=DTYPES[config.training.precision],
        trust_remote_code=config.model.trustRemoteCode,
        device_map={"": _device(config)},
    )
    return base.eval()


def _device(config: TrainerConfig) -> Any:
    import torch

    if config.topology.gpus and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


@contextmanager
def _base_of(model: Any, config: TrainerConfig, prepared: PreparedManifest) -> Iterator[Any]:
    """The base model: the adapter switched off, or (full fine-tuning) loaded on its own."""
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield model
        return
    base = load_base(config, prepared)
    try:
        yield base
    finally:
        del base
        _free()


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _score(
    model: Any, tokenizer: Any, turns: list[Turn], syntax: Syntax, max_new: int, name: str
) -> list[dict[str, Any]]:
    fresh = [Turn(t.conversation, t.turn, t.expected, t.prompt, t.error) for t in turns]
    generate(model, tokenizer, fresh, max_new)
    return records_of(fresh, syntax, name)


def score_shard(
    config: TrainerConfig,
    prepared: PreparedManifest,
    conversations: list[dict[str, Any]],
    tokenizer: Any,
    syntax: Syntax,
) -> tuple[list[dict[str, Any]], str | None]:
    """This rank's records (trained, then base), or the reason it has none."""
    import torch.distributed as dist

    rank, world = (dist.get_rank(), dist.get_world_size()) if initialized() else (0, 1)
    try:
        every = turns_of(conversations, tokenizer, config.evaluation.maxSamples)
        mine = shard(every, rank, world)
        model = load_trained(config, prepared, Path(config.paths.output))
        records = _score(model, tokenizer, mine, syntax, config.evaluation.maxNewTokens, "trained")
        if config.evaluation.baseline:
            with _base_of(model, config, prepared) as base:
                records += _score(
                    base, tokenizer, mine, syntax, config.evaluation.maxNewTokens, "base"
                )
        model = None
        _free()
        return records, None
    except Exception as err:  # reported, never fatal to the outputs
        return [], f"rank {rank}: {type(err).__name__}: {err}"


def evaluate_tool_calls(
    config: TrainerConfig, prepared: PreparedManifest, tokenizer: Any, sinks: Any, so_far: Any
) -> dict[str, Any] | None:
    """Score, gather and report (rank 0 returns the `evaluation` it reported, the others None).
    `so_far`: the eval loss and accuracy already reported, kept beside the scores."""
    out = Path(config.paths.output)
    conversations = held_out_conversations(prepared)
    if not wanted(config, conversations):
        return None
    syntax = syntax_of(tokenizer.chat_template)
    records: list[dict[str, Any]] = []
    if syntax is None:
        error: str | None = (
            "the chat template has no tool-call syntax kubetune reads (<tool_call> blocks or "
            "Llama 3.1 JSON calls): use a built-in template or set evaluation.toolCalls: false"
        )
    elif not any(carries_tools(c) for c in conversations):
        error = "no held-out conversation carries tools"
    else:
        records, error = score_shard(config, prepared, conversations, tokenizer, syntax)
    gathered = gather([{"error": error}] if error else records)
    if gathered is None:
        return None
    return _report(config, gathered, out, sinks, dict(so_far or {}))


def _report(
    config: TrainerConfig,
    gathered: list[dict[str, Any]],
    out: Path,
    sinks: Any,
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    try:
        errors = [r["error"] for r in gathered if set(r) == {"error"}]
        if errors:
            evaluation["error"] = "; ".join(sorted(set(errors)))
        else:
            folder = out / "evaluation"
            folder.mkdir(parents=True, exist_ok=True)
            for name, field, filename in (
                ("trained", "toolCalls", SAMPLES),
                ("base", "baselineToolCalls", BASELINE_SAMPLES),
            ):
                if name == "base" and not config.evaluation.baseline:
                    continue
                rows = sorted(
                    (r for r in gathered if r["model"] == name),
                    key=lambda r: (r["conversation"], r["turn"]),
                )
                _write_lines(folder / filename, rows)
                evaluation[field] = summarise(rows)
            evaluation["samples"] = str(folder / SAMPLES)
            log(f"tool-call scores: {json.dumps(evaluation)}")
        _add_to_manifest(out, evaluation)
    except Exception as err:  # reported, never fatal to the outputs
        evaluation["error"] = f"{type(err).__name__}: {err}"
    if "error" in evaluation:
        log(f"tool-call scoring failed (the outputs are complete): {evaluation['error']}")
    sinks.report({"evaluation": evaluation}, force=True)
    return evaluation


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    os.replace(tmp, path)


def _add_to_manifest(out: Path, evaluation: dict[str, Any]) -> None:
    manifest_file = out / "manifest.json"
    if not manifest_file.is_file():
        return
    manifest = json.loads(manifest_file.read_text())
    manifest["evaluation"] = evaluation
    tmp = manifest_file.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, manifest_file)
