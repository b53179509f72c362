"""`prepare`: the init container. Fetch the model and datasets, then format → template →
tokenize → mask → pack, and save the result under a fingerprint of everything that changes it.

Every replica runs it. One does the work under a lease on the shared volume; the others wait
and log its progress. The result is built in a temporary folder and renamed into place with a
COMPLETE marker inside, so a crashed preparation is redone, never half-used. A second run with
the same fingerprint does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kubetune_api.config import TrainerConfig
from kubetune_api.inputs_spec import PREFERENCE_FORMATS
from kubetune_api.training_spec import GrpoSpec
from kubetune_trainer.data.formats import FormatError, convert
from kubetune_trainer.data.jinja_check import template_error
from kubetune_trainer.data.pairs import PairEncoder
from kubetune_trainer.data.preference import convert_pair
from kubetune_trainer.data.prepared import PreparedManifest
from kubetune_trainer.data.prompts import PromptEncoder, convert_prompt
from kubetune_trainer.data.splits import write_conversations, write_split
from kubetune_trainer.data.templates import BUILTIN_NAMES, builtin_template
from kubetune_trainer.data.tokenize import Encoder, Refused
from kubetune_trainer.data.workers import cores, encode_batches, split
from kubetune_trainer.runtime.lease import holder_id, lease
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.sources import Fetched, content_digest, fetch_dataset, fetch_model

DATA_VERSION = "4"  # bump when preprocessing changes what it writes (4: tool-call names trained)
COMPLETE = "COMPLETE"
FIRST_REASONS = 3


class PrepareError(ValueError):
    """Data that cannot be prepared; the message names the source and what to fix."""


def load_tokenizer(model_path: Path, config: TrainerConfig) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model_path, trust_remote_code=config.model.trustRemoteCode
    )
    template = config.dataset.chatTemplate if config.dataset else None
    if template and template.builtin:
        tokenizer.chat_template = builtin_template(template.builtin)
    elif template and template.jinja:
        tokenizer.chat_template = template.jinja
    if tokenizer.chat_template:
        compile_template(tokenizer.chat_template, "dataset.chatTemplate")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def compile_template(source: str, field: str) -> None:
    """Refuse a chat template that does not compile, naming where it came from."""
    error = template_error(source)
    if error:
        raise PrepareError(f"{field}: the chat template does not compile: {error}")


def fingerprint(
    config: TrainerConfig, datasets: list[Fetched], tokenizer: Any, model: Fetched
) -> str:
    assert config.dataset is not None
    tokenizer_files = sorted(
        p
        for p in Path(tokenizer.name_or_path).glob("*")
        if p.is_file() and ("token" in p.name or p.name == "special_tokens_map.json")
    )
    inputs = {
        "version": DATA_VERSION,
        "sources": [
            {**s.model_dump(mode="json", exclude={"tokenSecretRef"}), "content": d.revision}
            for s, d in zip(config.dataset.all_sources, datasets, strict=True)
        ],
        "validation": config.dataset.validation is not None,
        "tokenizer": [content_digest(p) for p in tokenizer_files] or [model.revision],
        "template": tokenizer.chat_template,
        "trainOnRoles": sorted(config.dataset.trainOnRoles),
        "evalFraction": config.dataset.evalFraction,
        "maxLength": config.training.maxLength,
        "packing": config.training.packing,
        "seed": config.training.seed,
    }
    if config.training.objective != "sft":  # pairs, not packed rows (SFT fingerprints unchanged)
        inputs["objective"] = config.training.objective
    if config.training.objective == "grpo":  # it decides which prompts are too long
        grpo = config.training.grpo or GrpoSpec()
        inputs["maxCompletionLength"] = grpo.maxCompletionLength
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]


def load_records(fetched: Fetched, split: str) -> Any:
    import datasets

    path = fetched.path
    if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = datasets.load_from_disk(str(path))
        return loaded[split.split("[")[0]] if isinstance(loaded, datasets.DatasetDict) else loaded
    if path.is_file():
        kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(path.suffix)
        if kind is None:
            raise PrepareError(f"{path}: unsupported file type (use .jsonl, .json or .parquet)")
        return datasets.load_dataset(kind, data_files=str(path), split=split)
    return datasets.load_dataset(str(path), split=split)


class Skipped:
    """Records left out of a source: how many, how many per reason, and the first few."""

    def __init__(self) -> None:
        self.count = 0
        self.reasons: dict[str, int] = {}
        self.first: list[str] = []

    def add(self, row: int, reason: str) -> None:
        self.count += 1
        kind = reason.split(":")[0]
        self.reasons[kind] = self.reasons.get(kind, 0) + 1
        if len(self.first) < FIRST_REASONS:
            self.first.append(f"row {row}: {reason}")


def convert_source(
    index: int,
    source: Any,
    fetched: Fetched,
    encoder: Encoder | PairEncoder | PromptEncoder,
    seed: int,
    progress_file: Path,
    where: str,
) -> tuple[list[tuple[Any, Any]], dict[str, Any]]:
    """One dataset source → its samples (each with its conversation, or its pair) and its
    report entry.

    A record that does not fit its format, or that the chat template refuses, is skipped and
    counted with its reason (`skippedReasons`, the first few in `firstErrors`, each naming its
    row in the source); a source where no record survives stops the preparation."""
    import numpy as np

    records = load_records(fetched, source.split)
    # the same order as records.shuffle(seed), keeping each record's row in its source
    rows = np.random.default_rng(seed).permutation(len(records))
    if source.sampleLimit:
        rows = rows[: source.sampleLimit]
    records = records.select(rows)
    skipped = Skipped()
    conversations = []
    to_sample: Any = convert
    if isinstance(encoder, PromptEncoder):
        to_sample = convert_prompt
    elif source.format in PREFERENCE_FORMATS:
        to_sample = convert_pair
    for row, record in zip(rows.tolist(), records, strict=True):
        try:
            conversations.append((row, to_sample(record, source.format, source.fields)))
        except FormatError as err:
            skipped.add(row, str(err))
    samples: list[tuple[Any, Any]] = []
    # one worker per core (threads, or processes: data/workers.py), each given a batch at a time
    chunks = split(conversations, cores())
    workers = min(cores(), len(chunks))
    encoded_chunks = encode_batches(encoder, ([c for _, c in chunk] for chunk in chunks), workers)
    done = 0
    for chunk, encoded in zip(chunks, encoded_chunks, strict=True):
        done += len(chunk)
        for (i, conversation), result in zip(chunk, encoded, strict=True):
            if isinstance(result, Refused):
                skipped.add(i, result.reason)
            elif result is not None:
                samples.append((conversation, result))
        progress_file.write_text(
            json.dumps({"source": index, "done": done, "total": len(conversations)})
        )
    where = f"{where} ({source.source})"
    if skipped.count == len(records) and records:
        raise PrepareError(
            f"{where}: none of its {len(records)} records could be used as format "
            f"{source.format!r} with this chat template; first reasons: {'; '.join(skipped.first)}"
        )
    if skipped.count:
        first = "; ".join(skipped.first)
        log(f"{where}: skipped {skipped.count} of {len(records)} records: {first}")
    report = {
        "source": source.source,
        "records": len(records),
        "samples": len(samples),
        "skipped": skipped.count,
        "skippedReasons": skipped.reasons,
        "firstErrors": skipped.first,
    }
    return samples, report


def build(
    config: TrainerConfig, fetched: list[Fetched], tokenizer: Any, target: Path
) -> dict[str, Any]:
    """Preprocess into a temporary folder; return the report. The caller renames it.

    Each source is converted on its own (`convert_source`); the held-out split is
    `dataset.validation`'s samples, or the first `dataset.evalFraction` of the training ones.
    Each split is packed and written (`write_split`), and the held-out conversations are kept
    for tool-call scoring (`write_conversations`)."""
    assert config.dataset is not None
    spec, training = config.dataset, config.training
    encoder: Encoder | PairEncoder | PromptEncoder
    if training.objective == "dpo":
        encoder = PairEncoder(tokenizer, training.maxLength)
    elif training.objective == "grpo":
        grpo = training.grpo or GrpoSpec()
        encoder = PromptEncoder(tokenizer, training.maxLength, grpo.maxCompletionLength)
    else:
        encoder = Encoder(tokenizer, spec.trainOnRoles, training.maxLength)
    progress_file = target.with_name(f"{target.name}.progress")
    started = time.monotonic()
    samples: list[tuple[Any, Any]] = []
    held_out: list[tuple[Any, Any]] = []
    sources_report = []
    for index, (source, data) in enumerate(zip(spec.all_sources, fetched, strict=True)):
        validation = index == len(spec.sources)
        where = "dataset.validation" if validation else f"dataset.sources[{index}]"
        converted, entry = convert_source(
            index, source, data, encoder, training.seed, progress_file, where
        )
        if validation:
            held_out = converted
            entry["validation"] = True
        else:
            samples += converted
        sources_report.append(entry)
    if not samples:
        raise PrepareError("no usable samples: every one was empty or truncated to no labels")
    if spec.validation is None:
        n_eval = int(len(samples) * spec.evalFraction)
        samples, held_out = samples[n_eval:], samples[:n_eval]
    report: dict[str, Any] = {
        "sources": sources_report,
        "skippedRecords": sum(entry["skipped"] for entry in sources_report),
        "stats": asdict(encoder.stats),
    }
    for name, part in {"train": samples, "eval": held_out}.items():
        if part:
            report[name] = write_split(name, [e for _, e in part], config, target)
    if held_out:
        report["eval"].update(write_conversations([c for c, _ in held_out], target))
    report["seconds"] = round(time.monotonic() - started, 2)
    progress_file.unlink(missing_ok=True)
    return report


def prepare(config: TrainerConfig) -> PreparedManifest:
    """Run the whole preparation; returns what the training step reads (also saved)."""
    job = Path(config.paths.job)
    job.mkdir(parents=True, exist_ok=True)
    model = fetch_model(config)
    result: PreparedManifest = {"model": str(model.path), "modelRevision": model.revision}
    if config.dataset is not None:
        tokenizer = load_tokenizer(model.path, config)
        if tokenizer.chat_template is None and any(
            s.format != "text" for s in config.dataset.all_sources
        ):
            raise PrepareError(
                "the tokenizer has no chat template: set dataset.chatTemplate "
                f"(builtin: one of {', '.join(BUILTIN_NAMES)}; or jinja)"
            )
        fetched = [fetch_dataset(config, i) for i in range(len(config.dataset.all_sources))]
        if tokenizer.chat_template:  # exported with the model: serving renders the same text
            digest = hashlib.sha256(tokenizer.chat_template.encode()).hexdigest()
            result["chatTemplateSha256"] = digest
        fp = fingerprint(config, fetched, tokenizer, model)
        target = Path(config.paths.cache) / "prepared" / fp
        result.update({"fingerprint": fp, "dataset": str(target)})
        if (target / COMPLETE).exists():
            log(f"dataset {fp} already prepared: nothing to do")
        else:
            _build_once(config, fetched, tokenizer, target)
        result["report"] = json.loads((target / "report.json").read_text())
    tmp = job / f"prepared.json.tmp-{holder_id()}"
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, job / "prepared.json")
    return result


def _build_once(
    config: TrainerConfig, fetched: list[Fetched], tokenizer: Any, target: Path
) -> None:
    progress = target.with_name(f"{target.name}.progress")

    def waiting() -> None:
        if progress.exists():
            log(f"waiting for another replica to prepare the dataset: {progress.read_text()}")

    with lease(target.with_name(f"{target.name}.lock"), on_wait=waiting):
        if (target / COMPLETE).exists():  # prepared while we waited
            log(f"dataset {target.name} prepared by another replica")
            return
        for stale in target.parent.glob(f"{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # a crashed preparation: redo it
        tmp = target.with_name(f"{target.name}.tmp-{holder_id()}")
        log(f"preparing dataset {target.name}")
        report = build(config, fetched, tokenizer, tmp)
        (tmp / "report.json").write_text(json.dumps(report, indent=2))
        (tmp / COMPLETE).write_text(str(time.time()))
        os.rename(tmp, target)
        train = report["train"]
        packing = train.get("packingEfficiency")
        log(
            f"prepared {train['samples']} samples into {train['rows']} rows "
            f"({train['tokens']} tokens"
            + (f", packing efficiency {packing:.3f}" if packing is not None else "")
            + f", {report['stats']['truncated_samples']} truncated) in {report['seconds']}s"
        )


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="kubetune_trainer prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="trainer.yaml (the ConfigMap's key)")
    args = parser.parse_args(argv)
    from kubetune_trainer.runtime import versions
    from kubetune_trainer.storage.errors import SourceError

    versions.require()

    try:
        prepare(TrainerConfig.load(args.config))
    except (PrepareError, SourceError, FormatError) as err:
        print(f"kubetune prepare: {err}", file=sys.stderr)
        return 1
    return 0
