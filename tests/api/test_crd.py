"""The CRD is generated from the models, structural, documented, and checked in unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from kubetune.api.crd import crd, crd_yaml
from tests.support.factories import REPO

CHECKED_IN = [REPO / "manifests" / "crd" / "finetunejobs.kubetune.io.yaml"]


def root_schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_checked_in_crd_is_current() -> None:
    for path in CHECKED_IN:
        assert path.read_text() == crd_yaml(), f"{path} is stale: run `make generate`"


def test_every_field_is_documented() -> None:
    spec = root_schema()["properties"]["spec"]
    missing = [
        p
        for p, n in walk(spec, "spec")
        if p != "spec"
        and not p.endswith("[]")
        and not p.endswith("{}")
        and not n.get("description")
    ]
    assert not missing, missing


def test_schema_is_structural() -> None:
    for path, node in walk(root_schema(), ""):
        assert "$ref" not in node and "title" not in node and "const" not in node, path
        typed = "type" in node or node.get("x-kubernetes-int-or-string")
        assert typed or node.get("x-kubernetes-preserve-unknown-fields"), f"untyped: {path}"
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), (
                f"only int-or-string may use anyOf: {path}"
            )
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path


def test_defaults_sit_where_the_api_server_applies_them() -> None:
    spec = root_schema()["properties"]["spec"]["properties"]
    assert spec["training"]["default"] == {}
    assert spec["training"]["properties"]["maxLength"]["default"] == 2048
    assert spec["dataset"]["properties"]["trainOnRoles"]["default"] == ["assistant"]


def test_names_columns_and_subresources() -> None:
    doc = crd()
    names = doc["spec"]["names"]
    assert names["shortNames"] == ["ftj"] and "kubetune" in names["categories"]
    version = doc["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase" and columns["Loss"] == ".status.progress.loss"


def test_rules_point_at_real_fields() -> None:
    spec = root_schema()["properties"]["spec"]
    paths = {p for p, _ in walk(spec, "")}
    for rule in spec["x-kubernetes-validations"]:
        assert rule["fieldPath"] in paths, rule
        assert rule["message"].startswith("spec."), rule


def test_crd_yaml_round_trips() -> None:
    assert yaml.safe_load(crd_yaml()) == crd()
