"""Rendering helpers shared by the render tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kubetune.api import parse_job
from kubetune.render import render
from tests.factories import example_docs

GOLDEN = Path(__file__).with_name("golden")
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
