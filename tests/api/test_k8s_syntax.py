"""kubetune's ports of Kubernetes' syntax rules agree with references kubetune did not write.

Values come from Kubernetes' own tests (apimachinery v0.35 `pkg/api/validate/content/*_test.go`,
`pkg/api/resource/quantity_test.go`; distribution/reference v0.6.0 `reference_test.go`); the
quantity verdicts from the `kubernetes` client's `parse_quantity`; the core/v1 schema from the
`kubernetes` client's models and the `jsonschema` library.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any

import jsonschema
import kubernetes.client
import pytest
from kubernetes.utils import parse_quantity

from kubetune.api.corev1 import SCHEMAS, check
from kubetune_api.k8s_syntax import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    IMAGE_REFERENCE,
    IMAGE_REFERENCE_MAX,
    POSITIVE_QUANTITY,
    is_label_value,
    is_qualified_name,
)
from tests.support.bad_inputs import CASES

# quantity_test.go TestQuantityParse (valid) and its invalid table, plus signed forms.
QUANTITIES = [
    "0", "0n", "0u", "0m", "0Ki", "0k", "0Mi", "0M", "0Gi", "0G", "0Ti", "0T", "1", "1Ki", "8Ki",
    "7Mi", "6Gi", "5Ti", "4Pi", "3Ei", "10Ti", "100Ti", "5n", "4u", "3m", "9", "8k", "50k", "7M",
    "6G", "5T", "40T", "300T", "2P", "1E", "1E-3", "1e3", "1E6", "1e9", "1E12", "1e15", "1E18",
    "100.035k", "0.001", "0.0005k", "0.005", "0.05", "0.5", "0.00050k", "0.00500", "0.5e0",
    "0.5e-1", "10.035M", "1.2e3", "1.3E+6", "1.40e9", "9.01", "8.1k", "7.123456M", "2.5P",
    "1.01E", "3.001n", "1.1E-9", "0.0000000001", "0.5e-9", "0.9n", "9Ei", "12E", "100.035Ki",
    "0.5Mi", "0.05Gi", "0.000000000001Ki", ".001", ".0001k", "1.", "1.G",
    "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1", "1 ",
    "-1", "-8Gi", "-0", "+5", "+0.5Gi", "-0.0", "8GB", "8gi", "",
]  # fmt: skip


# quantity_test.go's invalid table: the Python client is laxer about surrounding spaces
# (Decimal strips them), so Go's verdict wins for these.
GO_INVALID = {
    "1.1.M",
    "1+1.0M",
    "0.1mi",
    "0.1am",
    "aoeu",
    ".5i",
    "1i",
    "-3.01i",
    "-3.01e-",
    " 1",
    "1 ",
}


def kubernetes_verdict(text: str) -> bool:
    if text in GO_INVALID:
        return False
    try:
        return bool(parse_quantity(text) > Decimal(0))
    except ValueError:
        return False


@pytest.mark.parametrize("text", QUANTITIES)
def test_positive_quantity_pattern_agrees_with_the_kubernetes_client(text: str) -> None:
    assert bool(re.match(POSITIVE_QUANTITY, text)) == kubernetes_verdict(text)


# content/dns_test.go and kube_test.go
DNS_LABEL_BAD = [
    "",
    "A",
    "aBc",
    "A-1",
    "-",
    "a-",
    "-a",
    "_",
    "a_b",
    ".",
    "a.b",
    " ",
    "a b",
    "a" * 64,
]
SUBDOMAIN_GOOD = ["a", "0", "a--1--2--b", "a.a", "a-1.1", "1--a--b--2.a", "a." * 126 + "a"]
SUBDOMAIN_BAD = ["", "A", "a_b", ".", "a.", ".a", "a..b", "a b", "A.a", "a@b", "a:b", "a" * 254]
LABEL_VALUE_GOOD = [
    "simple",
    "now-with-dashes",
    "1-starts-with-num",
    "end-with-num-1",
    "",
    "a" * 63,
]
LABEL_VALUE_BAD = ["nospecialchars%^=@", "Tama-nui-te-rā.is.Māori.sun", "\\backslashes\\are\\bad",
                   "-starts-with-dash", "ends-with-dash-", ".starts.with.dot", "ends.with.dot.",
                   "a" * 64]  # fmt: skip
QUALIFIED_GOOD = ["simple", "now-with-dashes", "1-starts-with-num", "1234", "simple/simple",
                  "now-with-dashes/simple", "1-starts-with-num.com/now-with-dashes",
                  "example.com/MyName", "a" * 63, "a" * 253 + "/" + "b" * 63]  # fmt: skip
QUALIFIED_BAD = ["nospecialchars%^=@", "cantendwithadash-", "-cantstartwithadash-", "only/one/slash",
                 "Example.com/abc", "example_com/abc", "example.com/", "/simple", "a" * 64,
                 "a" * 254 + "/abc"]  # fmt: skip


def test_names_and_labels_follow_apimachinery_tests() -> None:
    def dns(pattern: str, limit: int, value: str) -> bool:
        return len(value) <= limit and bool(re.match(pattern, value))

    assert not [v for v in DNS_LABEL_BAD if dns(DNS1123_LABEL, 63, v)]
    assert all(dns(DNS1123_SUBDOMAIN, 253, v) for v in SUBDOMAIN_GOOD)
    assert not [v for v in SUBDOMAIN_BAD if dns(DNS1123_SUBDOMAIN, 253, v)]
    assert all(is_label_value(v) for v in LABEL_VALUE_GOOD)
    assert not [v for v in LABEL_VALUE_BAD if is_label_value(v)]
    assert all(is_qualified_name(v) for v in QUALIFIED_GOOD)
    assert not [v for v in QUALIFIED_BAD if is_qualified_name(v)]


F64 = "f" * 64
IMAGES_GOOD = ["test_com", "test.com:tag", "test.com:5000", "test.com/repo:tag", "test:5000/repo",
               f"test:5000/repo@sha256:{F64}", f"test:5000/repo:tag@sha256:{F64}",
               "lowercase:Uppercase", "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
               "b.gcr.io/test.example.com/my-app:test.example.com", "foo_bar.com:8080",
               "192.168.1.1:5000/repo:5050", "[2001:db8::1]/repo", "[::1]:5000/repo",
               f"[2001:db8::1]:5000/repo:tag@sha256:{F64}"]  # fmt: skip
IMAGES_BAD = ["", ":justtag", f"@sha256:{F64}", "repo@sha256:" + "f" * 31, "Uppercase:tag",
              "test:5000/Uppercase/lowercase:tag", "aa/asdf$$^/aa", "[2001:db8::1]",
              "[2001:db8::1]:5000", "[2001:db8::1]:tag", "[fe80::1%eth0]:5000/repo",
              "[fe80::1%@invalidzone]:5000/repo", "repo:" + "t" * 129, "repo: tag"]  # fmt: skip


def test_image_pattern_follows_the_distribution_reference_tests() -> None:
    def ok(image: str) -> bool:
        return len(image) <= IMAGE_REFERENCE_MAX and bool(re.match(IMAGE_REFERENCE, image))

    assert [i for i in IMAGES_GOOD if not ok(i)] == []
    assert [i for i in IMAGES_BAD if ok(i)] == []


def _client_model(name: str) -> Any:
    return getattr(kubernetes.client, f"V1{name}")


def _compare(schema: dict[str, Any], model_name: str, seen: list[str]) -> None:
    """The schema's fields are the client model's, with the same types, all the way down."""
    model = _client_model(model_name)
    wire = {v: k for k, v in model.attribute_map.items()}
    assert set(schema["properties"]) == set(wire), model_name
    seen.append(model_name)
    scalar = {"str": "string", "int": "integer", "bool": "boolean"}
    for field, prop in schema["properties"].items():
        kind = model.openapi_types[wire[field]]
        if kind in scalar:
            assert prop["type"] == scalar[kind], (model_name, field)
        elif kind.lower().startswith("list["):
            assert prop["type"] == "array", (model_name, field)
            inner = kind[5:-1]
            if inner in scalar:
                assert prop["items"]["type"] == scalar[inner]
            else:
                _compare(prop["items"], inner.removeprefix("V1"), seen)
        elif kind.lower().startswith(("dict(", "dict[")):
            assert prop["type"] == "object" and "additionalProperties" in prop
        else:
            _compare(prop, kind.removeprefix("V1"), seen)


@pytest.mark.parametrize("name", ["Toleration", "Affinity"])
def test_core_v1_schemas_match_the_kubernetes_client_models(name: str) -> None:
    seen: list[str] = []
    _compare(SCHEMAS[name], name, seen)
    assert len(seen) >= (1 if name == "Toleration" else 10)


def _strict(schema: Any) -> Any:
    """The schema as JSON Schema with unknown fields refused (kubectl's strict validation)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes")}
        if "properties" in schema:
            out["additionalProperties"] = False
        return out
    return copy.deepcopy(schema)


VALUES = [
    ("Toleration", {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}),
    ("Toleration", {"key": "gpu", "operator": "Equal", "value": "a100", "tolerationSeconds": 30}),
    ("Affinity", {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "gpu", "operator": "In", "values": ["a100", "h100"]}]}]}}}),
    ("Affinity", {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": {"a": "b"}}}}]}}),
]  # fmt: skip
for _, doc, _, _ in CASES:
    placement = doc["spec"].get("placement", {})
    VALUES += [("Toleration", t) for t in placement.get("tolerations", [])]
    VALUES += [("Affinity", placement["affinity"])] if "affinity" in placement else []


@pytest.mark.parametrize(("name", "value"), VALUES)
def test_core_v1_check_agrees_with_jsonschema(name: str, value: Any) -> None:
    validator = jsonschema.Draft7Validator(_strict(SCHEMAS[name]))
    assert (check(SCHEMAS[name], value) == []) == validator.is_valid(value)
