"""The generated FineTuneJob CRD on a real API server: accepted (structural, CEL within the
cost budget), examples admitted, and every bad job of the API table refused with its field.

Server-side dry-run: the API server runs defaulting, schema and CEL validation, stores nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.bad_inputs import CASES
from tests.support.factories import EXAMPLES, example_docs
from tests.support.kube import Kube, KubectlError, condition, eventually


def test_crd_is_established_with_its_names(ftj_crd: Kube) -> None:
    obj = ftj_crd.get("crd", "finetunejobs.kubetune.io")
    assert obj["status"]["acceptedNames"]["shortNames"] == ["ftj"]
    assert not condition(obj, "NonStructuralSchema")


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_admitted(ftj_crd: Kube, dry_run_kube: Kube, example: Path) -> None:
    for doc in example_docs(example):
        assert "created (server dry run)" in dry_run_kube.apply(doc, dry_run=True)


@pytest.mark.parametrize(("doc", "path"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_jobs_are_refused_naming_the_field(
    ftj_crd: Kube, dry_run_kube: Kube, doc: dict[str, Any], path: str
) -> None:
    doc = {
        **doc,
        "metadata": {k: v for k, v in doc["metadata"].items() if k not in ("uid", "namespace")},
    }
    with pytest.raises(KubectlError) as refused:
        dry_run_kube.apply(doc, dry_run=True)
    message = refused.value.stderr
    if path in ("kind", "apiVersion"):
        assert "no matches for kind" in message
    else:
        assert path in message, message


def test_explain_documents_fields(ftj_crd: Kube) -> None:
    text = eventually(lambda: _explain(ftj_crd), timeout=30, what="kubectl explain")
    assert "globalBatchSize" in text and "Sequences per optimizer step" in text


def _explain(kube: Kube) -> str | None:
    try:
        return kube.run("explain", "ftj.spec.training", namespaced=False)
    except KubectlError:
        return None
