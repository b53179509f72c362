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

from kubetune_trainer.config import TrainerConfig
from kubetune_trainer.data.formats import FormatError, convert
from kubetune_trainer.data.packing import pack, unpacked
from kubetune_trainer.data.templates import BUILTIN_TEMPLATES
from kubetune_trainer.data.tokenize import Encoder
from kubetune_trainer.lease import holder_id, lease
from kubetune_trainer.log import log
from kubetune_trainer.sources import Fetched, content_digest, fetch_dataset, fetch_model

DATA_VERSION = "1"  # bump when preprocessing changes what it writes
COMPLETE = "COMPLETE"
BATCH = 512
MAX_BAD_FRACTION = 0.05


class PrepareError(ValueError):
    """Data that cannot be prepared; the message names the source and what to fix."""


def load_tokenizer(model_path: Path, config: TrainerConfig) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model_path, trust_remote_code=config.model.trustRemoteCode
    )
    template = config.dataset.chatTemplate if config.dataset else None
    if template and template.builtin:
        tokenizer.chat_template = BUILTIN_TEMPLATES[template.builtin]
    elif template and template.jinja:
        tokenizer.chat_template = template.jinja
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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
            for s, d in zip(config.dataset.sources, datasets, strict=True)
        ],
        "tokenizer": [content_digest(p) for p in tokenizer_files] or [model.revision],
        "template": tokenizer.chat_template,
        "trainOnRoles": sorted(config.dataset.trainOnRoles),
        "evalFraction": config.dataset.evalFraction,
        "maxLength": config.training.maxLength,
        "packing": config.training.packing,
        "seed": config.training.seed,
    }
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


def build(
    config: TrainerConfig, fetched: list[Fetched], tokenizer: Any, target: Path
) -> dict[str, Any]:
    """Preprocess into a temporary folder; return the report. The caller renames it."""
    import datasets

    assert config.dataset is not None
    spec, training = config.dataset, config.training
    encoder = Encoder(tokenizer, spec.trainOnRoles, training.maxLength)
    progress_file = target.with_name(f"{target.name}.progress")
    samples, sources_report, bad = [], [], 0
    started = time.monotonic()
    for index, (source, data) in enumerate(zip(spec.sources, fetched, strict=True)):
        records = load_records(data, source.split).shuffle(seed=training.seed)
        if source.sampleLimit:
            records = records.select(range(min(source.sampleLimit, len(records))))
        conversations, errors = [], []
        for i, record in enumerate(records):
            try:
                conversations.append(convert(record, source.format, source.fields))
            except FormatError as err:
                errors.append(f"record {i}: {err}")
        if len(errors) > MAX_BAD_FRACTION * max(1, len(records)):
            raise PrepareError(
                f"dataset.sources[{index}] ({source.source}): {len(errors)} of {len(records)} "
                f"records do not fit format {source.format!r}; first: {errors[0]}"
            )
        bad += len(errors)
        for start in range(0, len(conversations), BATCH):
            samples += encoder.encode_batch(conversations[start : start + BATCH])
            progress_file.write_text(
                json.dumps({"source": index, "done": start + BATCH, "total": len(conversations)})
            )
        sources_report.append(
            {
                "source": source.source,
                "records": len(records),
                "skipped": len(errors),
                "firstErrors": errors[:3],
            }
        )
    if not samples:
        raise PrepareError("no usable samples: every one was empty or truncated to no labels")
    n_eval = int(len(samples) * spec.evalFraction)
    splits = {"train": samples[n_eval:], "eval": samples[:n_eval]}
    report: dict[str, Any] = {
        "sources": sources_report,
        "skippedRecords": bad,
        "stats": asdict(encoder.stats),
    }
    for name, part in splits.items():
        if not part:
            continue
        rows = pack(part, training.maxLength) if training.packing else unpacked(part)
        real = sum(len(r["input_ids"]) for r in rows)
        report[name] = {
            "samples": len(part),
            "rows": len(rows),
            "tokens": real,
            "packingEfficiency": real / (len(rows) * training.maxLength),
        }
        datasets.Dataset.from_list(rows).save_to_disk(str(target / name))
    report["seconds"] = round(time.monotonic() - started, 2)
    progress_file.unlink(missing_ok=True)
    return report


def prepare(config: TrainerConfig) -> dict[str, Any]:
    """Run the whole preparation; returns what the training step reads (also saved)."""
    job = Path(config.paths.job)
    job.mkdir(parents=True, exist_ok=True)
    model = fetch_model(config)
    result: dict[str, Any] = {"model": str(model.path), "modelRevision": model.revision}
    if config.dataset is not None:
        tokenizer = load_tokenizer(model.path, config)
        if tokenizer.chat_template is None and any(
            s.format != "text" for s in config.dataset.sources
        ):
            raise PrepareError(
                "the tokenizer has no chat template: set dataset.chatTemplate "
                "(builtin: chatml, llama-3, gemma or qwen, or jinja)"
            )
        fetched = [fetch_dataset(config, i) for i in range(len(config.dataset.sources))]
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
        log(
            f"prepared {train['samples']} samples into {train['rows']} rows "
            f"({train['tokens']} tokens, packing efficiency {train['packingEfficiency']:.3f}, "
            f"{report['stats']['truncated_samples']} truncated) in {report['seconds']}s"
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
    from kubetune_trainer import versions
    from kubetune_trainer.sources import SourceError

    versions.require()

    try:
        prepare(TrainerConfig.load(args.config))
    except (PrepareError, SourceError, FormatError) as err:
        print(f"kubetune prepare: {err}", file=sys.stderr)
        return 1
    return 0
