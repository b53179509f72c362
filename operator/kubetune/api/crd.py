"""Generate the FineTuneJob CRD from the typed models.

Pydantic emits JSON Schema (draft 2020-12); a CRD needs a *structural* OpenAPI v3 schema:
no `$ref`, no `title`, every node typed, `nullable` instead of `null` branches,
int-or-string for quantities, boolean `exclusiveMinimum`, free-form objects marked
`x-kubernetes-preserve-unknown-fields`. Cross-field rules come from `rules.RULES` as CEL.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, NoDefault
from pydantic_core import core_schema, to_jsonable_python

from kubetune.api.job import DNS1035
from kubetune.api.rules import OBJECT_RULES, RULES
from kubetune.api.spec import FineTuneJobSpec
from kubetune.yamlio import dump
from kubetune_api.resource import GROUP, KIND, PLURAL, VERSION
from kubetune_api.status import FineTuneJobStatus

Schema = dict[str, Any]


class _Generator(GenerateJsonSchema):
    """JSON Schema with factory defaults: `{}` for sub-objects, the value for lists and maps."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return {}
        return NoDefault if value in ([], {}) else to_jsonable_python(value)

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def openapi_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of one model."""
    raw = model.model_json_schema(schema_generator=_Generator, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _structural(node: JsonSchemaValue, defs: dict[str, Any]) -> Schema:
    node = copy.deepcopy(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = {**copy.deepcopy(target), **node}  # the field's own description wins
        return _structural(merged, defs)
    node.pop("title", None)
    if "description" in node:  # docstrings wrap at 100 columns; descriptions are one paragraph
        node["description"] = " ".join(node["description"].split())
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    if "anyOf" in node:
        node = _collapse_any_of(node, defs)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node.get(bound), bool):
            node[flag] = node.pop(bound)
            node[bound] = True
    if node.get("default", NoDefault) is None:
        node.pop("default")
    if "enum" in node and "type" not in node:
        node["type"] = "integer" if all(isinstance(v, int) for v in node["enum"]) else "string"
    if "properties" in node:
        node["type"] = "object"
        node["properties"] = {k: _structural(v, defs) for k, v in node["properties"].items()}
    if "items" in node:
        node["items"] = _structural(node["items"], defs)
    extra = node.get("additionalProperties")
    if node.get("type") == "object" and "properties" not in node:
        if isinstance(extra, dict) and extra:
            node["additionalProperties"] = _structural(extra, defs)
        else:
            node.pop("additionalProperties", None)
            node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def _collapse_any_of(node: Schema, defs: dict[str, Any]) -> Schema:
    options = node.pop("anyOf")
    branches = [b for b in options if b.get("type") != "null"]
    nullable = len(branches) < len(options)
    types = sorted(b.get("type", "") for b in branches)
    if types == ["integer", "string"]:  # a Kubernetes quantity
        node.update({"anyOf": [{"type": "integer"}, {"type": "string"}]})
        node["x-kubernetes-int-or-string"] = True
        for branch in branches:  # pattern applies to the string, minimum to the integer
            node |= {k: v for k, v in branch.items() if k in ("pattern", "minimum")}
        return node
    if len(branches) != 1:
        raise ValueError(f"cannot express a union in a structural schema: {branches}")
    merged = {**_structural(branches[0], defs), **node}
    if nullable and merged.get("type") != "object":
        merged["nullable"] = True
    return merged


def spec_validations() -> list[Schema]:
    return [
        {"rule": r.cel, "message": f"{r.path}: {r.message}", "fieldPath": "." + r.field}
        for r in RULES
    ]


def crd() -> Schema:
    """The CustomResourceDefinition of FineTuneJob."""
    spec = openapi_schema(FineTuneJobSpec)
    spec["x-kubernetes-validations"] = spec_validations()
    root: Schema = {
        "type": "object",
        "description": "FineTuneJob fine-tunes a language model (full, LoRA or QLoRA) as a "
        "Kubeflow PyTorchJob, and reports progress, checkpoints and outputs in its status.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "kubetune.io/v1alpha1"},
            "kind": {"type": "string", "description": "FineTuneJob"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": openapi_schema(FineTuneJobStatus),
        },
        "x-kubernetes-validations": [
            {
                "rule": f"self.metadata.name.matches('{DNS1035.pattern}') "
                "&& size(self.metadata.name) <= 63",
                "message": "metadata.name: must be a DNS-1035 label (lowercase letters, digits "
                "and '-', starting with a letter), at most 63 characters",
            },
            *[
                {"rule": r.cel, "message": f"{r.path}: {r.message}", "fieldPath": f".{r.path}"}
                for r in OBJECT_RULES
            ],
        ],
    }
    columns = [
        ("Phase", "string", ".status.phase", 0),
        ("Method", "string", ".spec.method.type", 0),
        ("Progress", "integer", ".status.progress.percent", 0),
        ("Loss", "number", ".status.progress.loss", 0),
        ("Step", "integer", ".status.progress.step", 1),
        ("ETA", "integer", ".status.progress.etaSeconds", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "kubetune",
                "app.kubernetes.io/part-of": "kubetune",
            },
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["ftj"],
                "categories": ["kubetune", "kubeflow"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p, "priority": prio}
                        for n, t, p, prio in columns
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `kubetune crd` from kubetune.api; do not edit.\n"
    return header + dump(crd())


def crd_chart_template() -> str:
    """The CRD as a Helm template: behind `crds.enabled`, kept on uninstall with `crds.keep`.

    A template, not a file under crds/, because Helm never upgrades what sits in crds/.
    """
    body = dump(crd()).replace(
        "metadata:\n",
        "metadata:\n"
        "  {{- if .Values.crds.keep }}\n"
        "  annotations:\n"
        "    helm.sh/resource-policy: keep\n"
        "  {{- end }}\n",
        1,
    )
    return (
        "{{- /* Generated by `kubetune crd --helm` from kubetune.api; do not edit. */ -}}\n"
        "{{- if .Values.crds.enabled }}\n" + body + "{{- end }}\n"
    )
