"""Generate charts/kubetune/values.schema.json from the commented values.yaml (`make generate`).

values.yaml is the one home of every value's default and description; this writes the schema
that Helm checks `--set`/`-f` values against, so the two cannot drift (a test compares them).

  # Section title.            a mapping whose keys are documented one by one: an object with
  section:                    additionalProperties false, recursed into
    # -- What it does.        a value: its type comes from the default, its description from
    key: default              the `# --` comment (continued by the `#` lines after it)

Constraints that a default cannot show (ranges, enums, patterns) are listed in CONSTRAINTS.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "charts" / "kubetune"
DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PORT = {"minimum": 1, "maximum": 65535}
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "nameOverride": {"maxLength": 63},
    "fullnameOverride": {"maxLength": 63},
    "image.repository": {"minLength": 1},
    "image.pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "imagePullSecrets": {"items": {"type": "object", "required": ["name"]}},
    "trainerImage": {"minLength": 1},
    "watchNamespaces": {"items": {"type": "string", "pattern": DNS_LABEL}},
    "replicaCount": {"minimum": 1},
    "metrics.port": PORT,
    "healthPort": PORT,
    "podLabels": {"additionalProperties": {"type": "string"}},
    "podAnnotations": {"additionalProperties": {"type": "string"}},
    "openaiApi.replicaCount": {"minimum": 1},
    "openaiApi.port": PORT,
    "openaiApi.defaultNamespace": {"pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"},
    "openaiApi.maxFileBytes": {"minimum": 1},
    "openaiApi.models": {
        "additionalProperties": {
            "type": "object",
            "required": ["spec"],
            "additionalProperties": False,
            "properties": {
                "methods": {
                    "type": "array",
                    "items": {"enum": ["supervised", "dpo", "reinforcement"]},
                },
                "spec": {"type": "object"},
            },
        }
    },
    "openaiApi.files.claimName": {"pattern": DNS_LABEL},
    "openaiApi.files.accessMode": {"enum": ["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]},
}
TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


def comments(text: str) -> dict[str, tuple[str, bool]]:
    """Dotted key → (its comment, whether it is a `# --` value comment)."""
    out: dict[str, tuple[str, bool]] = {}
    stack: list[tuple[int, str]] = []
    block: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):", line)
        if match:
            indent, key = len(match.group(1)), match.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            dotted = ".".join([*(k for _, k in stack), key])
            is_value = bool(block) and block[0].startswith("-- ")
            text_ = " ".join(block).removeprefix("-- ").strip()
            out[dotted] = (text_, is_value)
            stack.append((indent, key))
        block = []
    return out


def schema_of(path: str, value: Any, docs: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    description, is_value = docs.get(path, ("", False))
    if not description:
        raise SystemExit(f"values.yaml: {path} has no comment")
    if isinstance(value, dict) and not is_value:
        node: dict[str, Any] = {
            "type": "object",
            "description": description,
            "additionalProperties": False,
            "properties": {
                key: schema_of(f"{path}.{key}" if path else key, sub, docs)
                for key, sub in value.items()
            },
        }
        return node
    kind = "object" if isinstance(value, dict) else TYPES[type(value)]
    return {"type": kind, "description": description, "default": value, **CONSTRAINTS.get(path, {})}


def generate() -> str:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    docs = comments(text)
    schema = {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "kubetune chart values (generated from values.yaml by hack/values-schema.py)",
        "type": "object",
        "additionalProperties": False,
        "properties": {key: schema_of(key, value, docs) for key, value in values.items()},
    }
    unknown = set(CONSTRAINTS) - set(docs)
    if unknown:
        raise SystemExit(f"CONSTRAINTS names keys values.yaml lacks: {sorted(unknown)}")
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
