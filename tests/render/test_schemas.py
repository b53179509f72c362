"""Rendered objects are valid Kubernetes: core kinds against the 1.35 schemas (strict, via
kubernetes-validate) and the PyTorchJob against the training-operator's own CRD schema (the
vendored copy, itself checked against the training-operator's Go module)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.factories import EXAMPLES, PYTORCHJOB_CRD, REPO, cluster_versions
from tests.support.golden import by_kind, render_example
from tests.support.tiers import unavailable

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


def test_vendored_pytorchjob_crd_is_the_modules_own() -> None:
    # The copy in manifests/third_party must be the file the training-operator ships at the
    # version the local cluster runs (hack/refresh-pytorchjob-crd.sh copies it).
    if shutil.which("go") is None:
        unavailable("unit", "this test needs Go to fetch the training-operator module")
    version = cluster_versions()["TRAINING_OPERATOR_VERSION"]
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/kubeflow/training-operator@{version}"],
        cwd=REPO / "hack" / "cluster" / "kubernetes",
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = Path(json.loads(out)["Dir"])
    original = module / "manifests" / "base" / "crds" / "kubeflow.org_pytorchjobs.yaml"
    assert PYTORCHJOB_CRD.read_bytes() == original.read_bytes()
