"""Fluent factories for FineTuneJob documents: a valid minimal job, changed by dotted paths.

make_job()                                       # valid LoRA job on CPU
make_job(**{"spec.method.type": "qlora"})        # one field changed
make_job(gpus=8, nodes=2, method="qlora")        # the common knobs by name
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def cluster_versions() -> dict[str, str]:
    """hack/cluster/versions.env: the versions of the local control plane's pieces."""
    lines = (REPO / "hack" / "cluster" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


# The vendored copy (manifests/third_party/training-operator/README.md says where it came from).
PYTORCHJOB_CRD = (
    REPO
    / "manifests"
    / "third_party"
    / "training-operator"
    / cluster_versions()["TRAINING_OPERATOR_VERSION"]
    / "kubeflow.org_pytorchjobs.yaml"
)
DELETE = object()

_BASE: dict[str, Any] = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "FineTuneJob",
    "metadata": {
        "name": "job",
        "namespace": "team-a",
        "uid": "0b6e7d3c-0000-4000-8000-000000000001",
    },
    "spec": {
        "model": {"source": "hf://org/model"},
        "dataset": {"sources": [{"source": "hf://org/data", "format": "messages"}]},
    },
}


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Set (or with DELETE remove) `a.b[0].c` in a nested document, creating mappings."""
    keys: list[str | int] = []
    for part in dotted.split("."):
        name, _, rest = part.partition("[")
        keys.append(name)
        if rest:
            keys.append(int(rest.rstrip("]")))
    node: Any = doc
    for key in keys[:-1]:
        if isinstance(key, str) and key not in node:
            node[key] = {}
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


# The common knobs by name; `method="qlora"` also sets 4-bit quantization.
_KNOBS = {
    "gpus": "spec.distributed.gpusPerNode",
    "nodes": "spec.distributed.nodes",
    "method": "spec.method.type",
}


def make_job(**paths: object) -> dict[str, Any]:
    """A valid minimal job, with each dotted path (or knob, applied first) set to its value.

    The knobs are aliases of dotted paths rather than typed parameters: with named parameters,
    mypy checks each value of a `**{"a.b": value}` against every one of their types."""
    doc = copy.deepcopy(_BASE)
    for knob, dotted in _KNOBS.items():
        value = paths.pop(knob, None)
        if value is not None:
            set_path(doc, dotted, value)
            if knob == "method" and value == "qlora":
                set_path(doc, "spec.method.quantization", {"bits": 4})
    for dotted, value in paths.items():
        set_path(doc, dotted, value)
    return doc


def example_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def claims_read(docs: list[dict[str, Any]]) -> set[str]:
    """Claims the examples expect to exist: shared workspaces and pvc:// data sources."""
    claims = {
        d["spec"]["storage"]["existingClaim"]
        for d in docs
        if "existingClaim" in d["spec"].get("storage", {})
    }
    for doc in docs:
        for source in doc["spec"].get("dataset", {}).get("sources", []):
            if source["source"].startswith("pvc://"):
                claims.add(source["source"].removeprefix("pvc://").split("/")[0])
    return claims
