"""Rendering helpers shared by the render tests."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from kubetune.api import parse_job
from kubetune.render import render
from tests.support.factories import REPO, example_docs

GOLDEN = REPO / "tests" / "render" / "golden"
UID = "00000000-0000-4000-8000-00000000beef"


def as_cluster_object(doc: dict[str, Any]) -> dict[str, Any]:
    """The example as the operator sees it once applied: a namespace and a uid."""
    doc = copy.deepcopy(doc)
    doc["metadata"].setdefault("namespace", "ml-team")
    doc["metadata"]["uid"] = UID
    return doc


def render_example(path: Path) -> list[dict[str, Any]]:
    return [o for d in example_docs(path) for o in render(parse_job(as_cluster_object(d)))]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def assert_golden(golden: Path, text: str, what: str) -> None:
    """`text` equals the golden file; with KUBETUNE_UPDATE_GOLDEN set, it becomes the file."""
    if os.environ.get("KUBETUNE_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {what}: run with KUBETUNE_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs: review, then regenerate"
