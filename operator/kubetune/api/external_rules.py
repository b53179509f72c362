"""The spec's rules for what a job reaches outside kubetune: W&B's API key (from a Secret), a
custom entrypoint, and object storage (well-formed s3:// URIs, S3 connections only where a URI
is s3://, output uploads only from the built-in trainer). Part of `rules.RULES`."""

from __future__ import annotations

from kubetune.api.rule import Rule
from kubetune_api.s3_spec import S3_RULE_MESSAGE, s3_cel, s3_problem


def _s3_ok(uri: str | None) -> bool:
    return uri is None or not uri.startswith("s3://") or s3_problem(uri) is None


def _s3_detail(*uris: str | None) -> str:
    return "; ".join(f"{u}: {s3_problem(u)}" for u in uris if u and not _s3_ok(u))


def _s3_override_ok(uri: str | None, override: object) -> bool:
    return override is None or (uri is not None and uri.startswith("s3://"))


EXTERNAL_RULES: tuple[Rule, ...] = (
    Rule(
        "tracking.wandb.apiKeySecretRef",
        "!has(self.tracking.wandb) || self.tracking.wandb.mode != 'online' "
        "|| has(self.tracking.wandb.apiKeySecretRef)",
        "online W&B logging needs the API key from a Secret: {name: wandb, key: api-key}",
        lambda s: (
            s.tracking.wandb is None
            or s.tracking.wandb.mode != "online"
            or s.tracking.wandb.apiKeySecretRef is not None
        ),
    ),
    Rule(
        "entrypoint",
        "!has(self.entrypoint) || has(self.entrypoint.module) != has(self.entrypoint.command)",
        "set exactly one of entrypoint.module and entrypoint.command",
        lambda s: (
            s.entrypoint is None or (s.entrypoint.module is None) != (s.entrypoint.command is None)
        ),
    ),
    Rule(
        "model.source",
        "!has(self.model.source) || " + f"({s3_cel('self.model.source')})",
        S3_RULE_MESSAGE,
        lambda s: _s3_ok(s.model.source),
        lambda s: _s3_detail(s.model.source),
    ),
    Rule(
        "dataset.sources",
        "!has(self.dataset) || self.dataset.sources.all(x, " + s3_cel("x.source") + ")",
        S3_RULE_MESSAGE,
        lambda s: s.dataset is None or all(_s3_ok(x.source) for x in s.dataset.sources),
        lambda s: _s3_detail(*(x.source for x in s.dataset.sources)) if s.dataset else "",
    ),
    Rule(
        "dataset.validation.source",
        "!has(self.dataset) || !has(self.dataset.validation) || "
        + f"({s3_cel('self.dataset.validation.source')})",
        S3_RULE_MESSAGE,
        lambda s: (
            s.dataset is None or s.dataset.validation is None or _s3_ok(s.dataset.validation.source)
        ),
        lambda s: (
            _s3_detail(s.dataset.validation.source) if s.dataset and s.dataset.validation else ""
        ),
    ),
    Rule(
        "output.uri",
        "!has(self.output.uri) || " + f"({s3_cel('self.output.uri')})",
        S3_RULE_MESSAGE,
        lambda s: _s3_ok(s.output.uri),
        lambda s: _s3_detail(s.output.uri),
    ),
    Rule(
        "model.s3",
        "!has(self.model.s3) || (has(self.model.source) && self.model.source.startsWith('s3://'))",
        "an S3 connection for a model that is not s3://: remove model.s3",
        lambda s: _s3_override_ok(s.model.source, s.model.s3),
    ),
    Rule(
        "dataset.sources",
        "!has(self.dataset) || self.dataset.sources.all(x, !has(x.s3) "
        "|| x.source.startsWith('s3://'))",
        "an S3 connection (s3) for a source that is not s3://: remove that source's s3",
        lambda s: (
            s.dataset is None or all(_s3_override_ok(x.source, x.s3) for x in s.dataset.sources)
        ),
    ),
    Rule(
        "output.uri",
        "!has(self.output.uri) || !has(self.entrypoint)",
        "output.uri uploads the built-in trainer's outputs; a custom entrypoint writes its own: "
        "remove output.uri",
        lambda s: s.output.uri is None or s.entrypoint is None,
    ),
    Rule(
        "output.uploadCheckpoints",
        "!has(self.output.uploadCheckpoints) || !self.output.uploadCheckpoints "
        "|| has(self.output.uri)",
        "checkpoint uploads go to <output.uri>/checkpoints/: set output.uri (s3://bucket/prefix) "
        "or remove output.uploadCheckpoints",
        lambda s: not s.output.uploadCheckpoints or s.output.uri is not None,
    ),
    Rule(
        "output.s3",
        "!has(self.output.s3) || has(self.output.uri)",
        "an S3 connection for outputs without output.uri: set output.uri or remove output.s3",
        lambda s: s.output.s3 is None or s.output.uri is not None,
    ),
)
