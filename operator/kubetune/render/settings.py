"""Operator-wide settings that rendering takes as input (never read from the environment)."""

from __future__ import annotations

from dataclasses import dataclass

from kubetune import __version__


@dataclass(frozen=True)
class RenderSettings:
    trainer_image: str = f"ghcr.io/kubetune/trainer:{__version__}"
    """Image for jobs that do not name `spec.image`."""
    workspace_mount: str = "/workspace"
    """Where the workspace volume is mounted in every container."""
    default_storage_size: str = "100Gi"
    """Size of a created workspace claim when `spec.storage.size` is unset."""
    config_mount: str = "/etc/kubetune"
    """Where the trainer config ConfigMap is mounted."""
