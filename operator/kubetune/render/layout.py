"""Where things live on the workspace volume, and where each source resolves to.

    <workspace>/cache/huggingface      HF_HOME: hub downloads, shared by every job
    <workspace>/cache/prepared/<fp>    tokenized datasets, by content fingerprint
    <workspace>/jobs/<job>/            checkpoints/, progress.json, tensorboard/, wandb/
    <workspace>/jobs/<job>/output/     adapter/, merged/, manifest.json (default output)

Pure and immutable: the same inputs give the same paths, in a pod (`/workspace`) or on a
laptop. The claims a job reads besides its workspace are a value of their own
(`Layout.claims_read`), which the pod template mounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

PVC_MOUNT_ROOT = PurePosixPath("/mnt/pvc")


class SourceError(ValueError):
    """A source that cannot be resolved where the job runs."""


@dataclass(frozen=True)
class Layout:
    workspace: PurePosixPath
    """Root of the workspace volume."""
    own_claim: str | None = None
    """Claim mounted at the workspace (None for local runs)."""
    relative_base: PurePosixPath | None = None
    """Base for relative source paths; defaults to the workspace."""

    def cache(self) -> PurePosixPath:
        return self.workspace / "cache"

    def job_dir(self, job: str) -> PurePosixPath:
        return self.workspace / "jobs" / job

    def output_dir(self, job: str, custom: str | None) -> PurePosixPath:
        return self.workspace / custom if custom else self.job_dir(job) / "output"

    def claim_root(self, claim: str) -> PurePosixPath:
        """Where `claim` is visible: the workspace itself, or a read-only mount of its own."""
        if claim == self.own_claim:
            return self.workspace
        if self.own_claim is None:
            raise SourceError(
                f"pvc://{claim}/… needs a cluster; for a local run use a local path instead"
            )
        return PVC_MOUNT_ROOT / claim

    def claims_read(self, sources: list[str], job_claims: list[str]) -> dict[str, PurePosixPath]:
        """The claims other than the workspace that `sources` (pvc://<claim>/…) and chained
        stages (their claims) read: name → where each is mounted, read-only."""
        claims = [s.removeprefix("pvc://").partition("/")[0] for s in sources]
        wanted = sorted({c for c in [*claims, *job_claims] if c and c != self.own_claim})
        return {claim: self.claim_root(claim) for claim in wanted}

    def resolve(self, source: str) -> PurePosixPath | None:
        """The local path of a source, or None for a hub, S3 or built-in source the trainer
        fetches."""
        if source.startswith(("hf://", "builtin://", "s3://")):
            return None
        if source.startswith("pvc://"):
            claim, _, rest = source.removeprefix("pvc://").partition("/")
            if not claim:
                raise SourceError(f"{source!r}: expected pvc://<claim>/<path>")
            return self.claim_root(claim) / rest if rest else self.claim_root(claim)
        path = PurePosixPath(source)
        if path.is_absolute():
            return path
        return (self.relative_base or self.workspace) / path

    def from_job(self, other: str, artifact: str, claim: str | None) -> PurePosixPath:
        """What another FineTuneJob left: its output folder or its checkpoints folder."""
        root = self.claim_root(claim) if claim else self.workspace
        folder = "output" if artifact == "final" else "checkpoints"
        return root / "jobs" / other / folder
