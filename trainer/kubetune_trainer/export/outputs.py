"""Export: the adapter (safetensors), optionally the merged model and its GGUF files, and the
run manifest.

Each output carries the tokenizer with the exact chat template the data was rendered with
(`chat_template.jinja`), and the manifest its SHA-256, so serving renders the same text.

The manifest is written last; its presence means the output is complete (chained stages and
the operator rely on that). GGUF files (kubetune_trainer.export.gguf) come after the merged model: a
GGUF failure leaves adapter and merged in place, writes no manifest and fails the job
(EXIT_GGUF, not retried).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from kubetune_api.config import TrainerConfig, gguf_files, output_formats
from kubetune_trainer import __version__
from kubetune_trainer.data.prepared import PreparedManifest
from kubetune_trainer.export.gguf import GgufError, export_gguf
from kubetune_trainer.runtime.checkpoints import resumes
from kubetune_trainer.runtime.distributed import barrier
from kubetune_trainer.runtime.log import fail, log
from kubetune_trainer.training.modeling import DTYPES

EXIT_GGUF = 5  # 1-127: the PyTorchJob does not retry (the same model fails the same way)


def export(trainer: Any, config: TrainerConfig, prepared: PreparedManifest, result: Any) -> int:
    """Every rank calls this; rank 0 writes. Returns the exit code (0, or EXIT_GGUF)."""
    out = Path(config.paths.output)
    formats = output_formats(config)
    paths: dict[str, Any] = {}
    code = 0
    if config.method.type == "full":
        trainer.save_model(str(out / "merged"))  # every rank: ZeRO-3 gathers the shards
        paths["merged"] = str(out / "merged")
    else:
        trainer.save_model(str(out / "adapter"))
        paths["adapter"] = str(out / "adapter")
    barrier()
    if trainer.is_world_process_zero():
        tokenizer = trainer.processing_class
        for path in paths.values():
            tokenizer.save_pretrained(path)
        if "merged" in formats and config.method.type != "full":
            paths["merged"] = merge(config, prepared, out)
        if "merged" in paths:
            keep_sentencepiece(Path(prepared["model"]), Path(paths["merged"]), tokenizer)
        if "adapter" not in formats and "adapter" in paths:
            paths.pop("adapter")
        if files := gguf_files(config):
            try:
                paths["gguf"] = export_gguf(Path(paths["merged"]), files)
            except GgufError as e:
                kept = ", ".join(f"{k} {v}" for k, v in paths.items())
                fail(f"GGUF export failed; kept {kept}; no manifest written. {e}")
                code = EXIT_GGUF
        if code == 0:
            write_manifest(config, prepared, result, paths, out)
    barrier()
    return code


def merge(config: TrainerConfig, prepared: PreparedManifest, out: Path) -> str:
    """Base (unquantized, in the training precision) + adapter → one standalone model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = DTYPES[config.training.precision]
    if config.method.quantization is not None:
        dtype = getattr(torch, config.method.quantization.computeDtype)
    base = AutoModelForCausalLM.from_pretrained(
        prepared["model"], dtype=dtype, trust_remote_code=config.model.trustRemoteCode
    )
    merged = PeftModel.from_pretrained(base, str(out / "adapter")).merge_and_unload()
    merged.save_pretrained(str(out / "merged"))
    AutoTokenizer.from_pretrained(str(out / "adapter")).save_pretrained(str(out / "merged"))
    log(f"merged model written to {out / 'merged'}")
    return str(out / "merged")


def keep_sentencepiece(base: Path, model: Path, tokenizer: Any) -> None:
    """A base that came with a SentencePiece model (tokenizer.model: Llama 2, Mistral v0.1)
    keeps it beside the merged model, with its added tokens listed as transformers 4 listed
    them. transformers 5 saves the fast tokenizer alone, and the added tokens only inside
    tokenizer.json; llama.cpp's converter reads the token scores from tokenizer.model (from
    tokenizer.json it writes none) and which added tokens are special from
    tokenizer_config.json's `added_tokens_decoder` (else `<|im_start|>` is plain text)."""
    source = base / "tokenizer.model"
    if not source.is_file():
        return
    if not (model / "tokenizer.model").exists():
        shutil.copy2(source, model / "tokenizer.model")
    config_file = model / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    if "added_tokens_decoder" not in config:  # transformers' own serialisation of it
        config["added_tokens_decoder"] = {
            str(i): token.__getstate__() for i, token in tokenizer.added_tokens_decoder.items()
        }
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def write_manifest(
    config: TrainerConfig, prepared: PreparedManifest, result: Any, paths: dict[str, Any], out: Path
) -> None:
    metrics = dict(getattr(result, "metrics", {}) or {})
    manifest = {
        "kubetuneVersion": __version__,
        "job": config.jobName,
        "baseModel": {
            "source": config.model.source,
            "fromJob": config.model.fromJob and config.model.fromJob.model_dump(),
            "path": prepared["model"],
            "revision": prepared.get("modelRevision"),
        },
        "method": config.method.type,
        "datasetFingerprint": prepared.get("fingerprint"),
        "chatTemplateSha256": prepared.get("chatTemplateSha256"),
        "configHash": hashlib.sha256(config.dump().encode()).hexdigest(),
        "outputs": paths,
        "metrics": {
            **metrics,
            "globalStep": getattr(result, "global_step", None),
            "trainingLoss": getattr(result, "training_loss", None),
        },
        # every restart (eviction, kill, suspend) and the steps it redid
        "resumes": resumes(Path(config.paths.job)),
        "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    gguf = paths.get("gguf") or {}
    tmp = out / f"manifest.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, out / "manifest.json")
    log(
        f"outputs: {', '.join(f'{k} {v}' for k, v in paths.items() if k != 'gguf')}"
        + "".join(f", gguf {f['path']} ({f['sizeBytes']} bytes)" for f in gguf.values())
        + f"; "
        f"manifest {out / 'manifest.json'}"
    )
