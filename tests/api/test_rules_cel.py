"""Each cross-field rule's CEL and its Python twin give the same verdict.

cel-python evaluates the CEL offline here; the cluster tests send the same documents to a real
kube-apiserver, which evaluates the CRD's x-kubernetes-validations itself.
"""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel
from pydantic import ValidationError

from kubetune.api.crd import crd
from kubetune.api.job import FineTuneJob
from kubetune.api.rules import OBJECT_RULES, RULES, broken_object_rules, broken_rules
from tests.support.bad_inputs import CASES
from tests.support.factories import EXAMPLES, example_docs

_ENV = celpy.Environment()
_PROGRAMS = [(_ENV.program(_ENV.compile(rule.cel)), rule) for rule in RULES]
_OBJECT_PROGRAMS = [(_ENV.program(_ENV.compile(rule.cel)), rule) for rule in OBJECT_RULES]


def with_schema_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it: a missing property with a `default`
    gets it, recursively; nothing else appears (no empty lists or maps for unset fields). A
    whole number in a `number` field reaches CEL as a double, as in the API server."""
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for name, prop in schema["properties"].items():
            if name not in out and "default" in prop:
                out[name] = prop["default"]
            if name in out:
                out[name] = with_schema_defaults(prop, out[name])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_schema_defaults(schema["items"], v) for v in value]
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # CEL sees a `number` field as a double, whole or not
    return value


ROOT_SCHEMA = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC_SCHEMA = ROOT_SCHEMA["properties"]["spec"]


def cel_broken(spec_doc: dict[str, Any]) -> list[str]:
    activation = {"self": json_to_cel(with_schema_defaults(SPEC_SCHEMA, spec_doc))}
    return [rule.cel for program, rule in _PROGRAMS if not bool(program.evaluate(activation))]


def cel_broken_object(doc: dict[str, Any]) -> list[str]:
    activation = {"self": json_to_cel(with_schema_defaults(ROOT_SCHEMA, doc))}
    return [r.cel for program, r in _OBJECT_PROGRAMS if not bool(program.evaluate(activation))]


def schema_valid_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = [(case_id, doc) for case_id, doc, _, _ in CASES]
    docs += [(f"{p.stem}[{i}]", d) for p in EXAMPLES for i, d in enumerate(example_docs(p))]
    out = []
    for name, doc in docs:
        try:
            FineTuneJob.model_validate(doc)
        except ValidationError:
            continue  # the schema refuses it before any rule runs
        out.append((name, doc))
    return out


DOCS = schema_valid_docs()


def test_rules_are_exercised() -> None:
    broken = set()
    for _, doc in DOCS:
        job = FineTuneJob.model_validate(doc)
        broken |= {r.cel for r in [*broken_rules(job.spec), *broken_object_rules(job)]}
    untested = [r.path for r in [*RULES, *OBJECT_RULES] if r.cel not in broken]
    assert not untested, f"rules no bad input breaks: {untested}"


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[n for n, _ in DOCS])
def test_cel_agrees_with_python(doc: dict[str, Any]) -> None:
    spec = FineTuneJob.model_validate(doc).spec
    python = [r.cel for r in broken_rules(spec)]
    assert cel_broken(doc["spec"]) == python
    job = FineTuneJob.model_validate(doc)
    assert cel_broken_object(doc) == [r.cel for r in broken_object_rules(job)]
