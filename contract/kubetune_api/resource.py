"""The FineTuneJob resource's group, version, kind and plural: where the API server serves it."""

from __future__ import annotations

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FineTuneJob"
PLURAL = "finetunejobs"


def status_path(namespace: str, name: str) -> str:
    """The URL path of one FineTuneJob's status subresource (the trainer's reporter patches it)."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
