"""Rendered objects are valid Kubernetes: core kinds against the 1.35 schemas (strict, via
kubernetes-validate) and the PyTorchJob against the training-operator v1.9.3 CRD schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.factories import EXAMPLES, REPO
from tests.render.helpers import by_kind, render_example

PYTORCHJOB_CRD = REPO.parent / "shared" / "crds" / "kubeflow.org_pytorchjobs.v1.9.3.yaml"
K8S_VERSION = "1.35.0"


def pytorchjob_validator() -> jsonschema.Validator:
    crd = yaml.safe_load(PYTORCHJOB_CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_pytorchjob_matches_training_operator_crd(example: Path) -> None:
    validator = pytorchjob_validator()
    for job in by_kind(render_example(example), "PyTorchJob"):
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(job)
        ]
        assert not errors, errors


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_core_objects_match_kubernetes_schemas(example: Path) -> None:
    for obj in render_example(example):
        if obj["kind"] == "PyTorchJob":
            for replica in obj["spec"]["pytorchReplicaSpecs"].values():
                template = replica["template"]
                pod: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", **template["metadata"]},
                    "spec": template["spec"],
                }
                kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_validator_catches_a_broken_pytorchjob() -> None:
    job = by_kind(render_example(REPO / "examples" / "tiny.yaml"), "PyTorchJob")[0]
    job["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    assert list(pytorchjob_validator().iter_errors(job))
