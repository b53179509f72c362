"""Fetching the model and datasets: hub repos and s3:// locations into the shared cache, paths
as they are.

Hub downloads go through huggingface_hub (token from HF_TOKEN, set from a Secret) into
HF_HOME on the workspace volume, so every replica and every later job reuses them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from kubetune_api.config import TrainerConfig
from kubetune_api.s3_spec import Located, S3Location, s3_locations, upstream_location
from kubetune_trainer.runtime.checkpoints import latest_complete
from kubetune_trainer.runtime.lease import lease
from kubetune_trainer.runtime.llama_cpp import GgufError
from kubetune_trainer.runtime.log import log
from kubetune_trainer.storage.errors import SourceError
from kubetune_trainer.storage.object_fetch import download
from kubetune_trainer.storage.object_store import MANIFEST, client, list_objects
from kubetune_trainer.storage.tiny import VERSION, build_tiny_llama


@dataclass(frozen=True)
class Fetched:
    path: Path
    """Local folder or file."""
    revision: str
    """Commit of a hub source, or a content digest of a local one."""


def hub_repo(source: str) -> str:
    return source.removeprefix("hf://")


def fetch_hub(
    source: str, revision: str | None, cache: Path, repo_type: str, token: str | None = None
) -> Fetched:
    from huggingface_hub import snapshot_download

    repo = hub_repo(source)
    key = hashlib.sha256(f"{repo_type}:{repo}@{revision}".encode()).hexdigest()[:16]
    with lease(
        cache / "locks" / f"hub-{key}.lock",
        on_wait=lambda: log(f"waiting: another replica is downloading {source}"),
    ):
        path = snapshot_download(
            repo, revision=revision, repo_type=repo_type, token=token or os.environ.get("HF_TOKEN")
        )
    return Fetched(Path(path), Path(path).name)


def local(path: str, what: str) -> Fetched:
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{what}: {path} does not exist")
    return Fetched(p, content_digest(p))


def content_digest(path: Path) -> str:
    """sha256 over file names and contents (a folder's files in sorted order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path if path.is_dir() else path.parent)).encode())
        with file.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def fetch_s3(config: TrainerConfig, field: str) -> Fetched:
    """The s3:// location named by `field`, downloaded into the cache (object_fetch.py)."""

    where = next(w for w in s3_locations(config) if w.field == field)
    path, revision = download(where, Path(config.paths.cache))
    return Fetched(path, revision)


def fetch_model(config: TrainerConfig) -> Fetched:
    source = config.model
    cache = Path(config.paths.cache)
    if source.source == "builtin://tiny-llama":
        # one folder per tokenizer; the trained one's keeps its name from before model.tokenizer
        name = f"tiny-llama-v{VERSION}" + (f"-{source.tokenizer}" if source.tokenizer else "")
        target = cache / "models" / name
        if not target.exists():
            with lease(cache / "locks" / f"{name}.lock"):
                if not target.exists():
                    real = f" with the {source.tokenizer} tokenizer" if source.tokenizer else ""
                    log(f"building builtin://tiny-llama{real}")
                    try:
                        build_tiny_llama(target, tokenizer_name=source.tokenizer)
                    except GgufError as err:  # no llama.cpp vocabularies: say which and how
                        raise SourceError(str(err)) from None
        return Fetched(target, f"builtin-{name}")
    if source.fromJob is not None:
        return resolve_from_job(config)
    if source.source and source.source.startswith("hf://"):
        return fetch_hub(source.source, source.revision, cache, "model")
    if source.source and source.source.startswith("s3://"):
        return fetch_s3(config, "model.source")
    assert config.paths.model is not None
    return local(config.paths.model, f"model.source ({source.source})")


def resolve_from_job(config: TrainerConfig) -> Fetched:

    ref = config.model.fromJob
    assert ref is not None and config.paths.model is not None
    where = Path(config.paths.model)
    if ref.artifact == "latestCheckpoint":
        found = latest_complete(where)
        if found is None:
            raise SourceError(f"model.fromJob: {ref.name} has no complete checkpoint in {where}")
        return Fetched(found, f"{ref.name}:{found.name}")
    for sub in ("merged", "adapter"):
        if (where / sub).exists() and (where / "manifest.json").exists():
            return Fetched(
                where / sub, f"{ref.name}:{content_digest(where / 'manifest.json')[:16]}"
            )
    if config.upstreamOutputs is not None:
        return fetch_upstream_outputs(config)
    raise SourceError(
        f"model.fromJob: {ref.name} has no finished output in {where} "
        "(it writes manifest.json last; is it done?)"
    )


def fetch_upstream_outputs(config: TrainerConfig) -> Fetched:
    """The upstream stage's merged model (else its adapter) from where it uploaded its outputs,
    downloaded into the cache like any s3:// source; only that folder, not its GGUF files."""

    assert config.upstreamOutputs is not None and config.model.fromJob is not None
    where = upstream_location(config.upstreamOutputs)
    base = where.uri if where.uri.endswith("/") else where.uri + "/"
    keys = [o.key for o in list_objects(client(where), where)]
    prefix = S3Location.parse(base).key
    if prefix + MANIFEST not in keys:
        raise SourceError(
            f"model.fromJob: {config.model.fromJob.name}'s outputs at {base} have no {MANIFEST} "
            "(it is uploaded last): the upload is incomplete or was replaced"
        )
    for sub in ("merged", "adapter"):
        if any(k.startswith(f"{prefix}{sub}/") for k in keys):
            log(f"model.fromJob: {config.model.fromJob.name}'s {sub} output from {base}{sub}/")
            folder = Located(where.field, base + sub + "/", where.connection, where.env)
            path, revision = download(folder, Path(config.paths.cache))
            return Fetched(path, f"{config.model.fromJob.name}:{revision[:16]}")
    raise SourceError(
        f"model.fromJob: {config.model.fromJob.name} uploaded no merged or adapter folder to "
        f"{base} (only {MANIFEST} and the files it lists are complete there)"
    )


def fetch_dataset(config: TrainerConfig, index: int) -> Fetched:
    assert config.dataset is not None
    spec = config.dataset.all_sources[index]
    if spec.source.startswith("hf://"):
        token = os.environ.get(f"KUBETUNE_DATASET_{index}_TOKEN")
        return fetch_hub(spec.source, spec.revision, Path(config.paths.cache), "dataset", token)
    n = len(config.dataset.sources)
    field = f"dataset.sources[{index}]" if index < n else "dataset.validation"
    if spec.source.startswith("s3://"):
        return fetch_s3(config, f"{field}.source")
    path = config.paths.datasets[index]
    assert path is not None
    return local(path, f"{field}.source ({spec.source})")
