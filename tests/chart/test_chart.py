"""The Helm chart: lint-clean, schema-strict, every value documented, least-privilege RBAC,
and its generated parts (the CRD template, manifests/install.yaml) current."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubetune.api.crd import crd_chart_template
from kubetune.render.rbac import reporter_access_chart_template
from tests.support.factories import REPO

CHART = REPO / "charts" / "kubetune"


@functools.cache
def helm() -> str:
    spec = importlib.util.spec_from_file_location(
        "render_install", REPO / "hack" / "render-install.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.helm())


def template(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm(), "template", "kt", str(CHART), "--namespace", "ops", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_helm_lint_is_clean() -> None:
    result = subprocess.run(
        [helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_rejects_unknown_values() -> None:
    result = subprocess.run(
        [helm(), "template", "kt", str(CHART), "--set", "replicas=2"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "replicas" in result.stderr


def test_every_value_is_commented() -> None:
    """Each parameter line has a comment above it (values of free-form keys are not parameters)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, dict[str, Any]]] = [(-1, schema)]
    skip_deeper_than: int | None = None
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        if skip_deeper_than is not None and indent > skip_deeper_than:
            continue
        skip_deeper_than = None
        while stack[-1][0] >= indent:
            stack.pop()
        node = stack[-1][1].get("properties", {}).get(key)
        assert node is not None, f"values.yaml:{i + 1} {key} is not in values.schema.json"
        if "properties" in node:
            stack.append((indent, node))
        else:
            skip_deeper_than = indent
        assert lines[i - 1].strip().startswith("#"), f"values.yaml:{i + 1} {key} has no comment"


def test_rendered_objects_are_valid_kubernetes() -> None:
    for obj in template():
        if obj["kind"] != "CustomResourceDefinition":
            kubernetes_validate.validate(obj, "1.35.0", strict=True)


def test_rbac_is_least_privilege() -> None:
    roles = {o["metadata"]["name"]: o for o in template() if o["kind"] == "ClusterRole"}
    assert sorted(roles) == ["kt-kubetune", "kubetune-reporter"]
    for rule in roles["kt-kubetune"]["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "secrets" not in rule["resources"], rule
        assert "delete" not in rule["verbs"], rule  # children go by garbage collection
        assert "bind" not in rule["verbs"] and "roles" not in rule["resources"], rule
    # The trainers' reporters: patch a FineTuneJob's status, nothing else (the admission
    # policy keeps each to its own job: tests/cluster/test_operator.py).
    assert roles["kubetune-reporter"]["rules"] == [
        {"apiGroups": ["kubetune.io"], "resources": ["finetunejobs/status"], "verbs": ["patch"]}
    ]
    kinds = {o["kind"] for o in template() if o["metadata"]["name"] == "kubetune-reporter"}
    assert kinds == {
        "ClusterRole",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }


def test_watched_namespaces_get_roles_not_cluster_roles() -> None:
    objs = template("--set", "watchNamespaces={team-a,team-b}")
    cluster_wide = [o for o in objs if o["kind"].startswith("Cluster") and "Role" in o["kind"]]
    # Only the reporters' ClusterRole, which grants nothing to the operator.
    assert [o["metadata"]["name"] for o in cluster_wide] == ["kubetune-reporter"]
    assert sorted(o["metadata"]["namespace"] for o in objs if o["kind"] == "Role") == [
        "team-a",
        "team-b",
    ]
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_crds_can_be_left_out_and_are_kept_on_uninstall() -> None:
    assert not [
        o
        for o in template("--set", "crds.enabled=false")
        if o["kind"] == "CustomResourceDefinition"
    ]
    crds = [o for o in template() if o["kind"] == "CustomResourceDefinition"]
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "clusterkopfpeerings.kopf.dev",  # where operator replicas meet (kopf peering)
        "finetunejobs.kubetune.io",
        "kopfpeerings.kopf.dev",
    ]
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)


def test_replicas_coordinate_through_peering() -> None:
    (one,) = [o for o in template() if o["kind"] == "Deployment"]
    assert "--standalone" in one["spec"]["template"]["spec"]["containers"][0]["args"]
    objs = template("--set", "replicaCount=2")
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    assert deploy["spec"]["replicas"] == 2
    assert "--standalone" not in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    (role,) = [
        o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "kt-kubetune"
    ]
    peering = [r for r in role["rules"] if "kopf.dev" in r["apiGroups"]]
    assert peering and set(peering[0]["resources"]) == {"clusterkopfpeerings", "kopfpeerings"}
    (single,) = [
        o
        for o in template()
        if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "kt-kubetune"
    ]
    assert not [r for r in single["rules"] if "kopf.dev" in r["apiGroups"]]


def test_operator_pod_is_locked_down() -> None:
    (deploy,) = [o for o in template() if o["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"]


def test_values_override_names_labels_and_security_contexts() -> None:
    objs = template(
        "--set",
        "nameOverride=tune,podLabels.team=ml,podSecurityContext.runAsUser=2000",
        "--set",
        "securityContext.readOnlyRootFilesystem=false",
    )
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    assert deploy["metadata"]["name"] == "kt-tune"
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "tune"
    assert pod["spec"]["securityContext"]["runAsUser"] == 2000
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True  # the other defaults stay
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is False
    (full,) = [o for o in template("--set", "fullnameOverride=ops") if o["kind"] == "Deployment"]
    assert full["metadata"]["name"] == "ops"


def test_the_schema_describes_every_value_with_its_default() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        assert node.get("description"), f"{path}: no description"
        if "properties" in node:
            assert set(node["properties"]) == set(value), path
            for key, sub in node["properties"].items():
                walk(sub, value[key], f"{path}.{key}")
        else:
            assert node["default"] == value, path

    for key, node in schema["properties"].items():
        walk(node, values[key], key)


def generated(script: str) -> str:
    """What a generator under hack/ prints now."""
    done = subprocess.run(
        [sys.executable, str(REPO / "hack" / script)], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_generated_files_are_current() -> None:
    assert (CHART / "templates/crds/finetunejobs.yaml").read_text() == crd_chart_template()
    reporter = (CHART / "templates/reporter-access.yaml").read_text()
    assert reporter == reporter_access_chart_template(), "run `make generate`"
    schema = (CHART / "values.schema.json").read_text()
    assert schema == generated("values-schema.py"), "run `make generate`"
    install = (REPO / "manifests/install.yaml").read_text()
    assert install == generated("render-install.py"), "run `make generate`"


def openai_api_objects(*args: str) -> list[dict[str, Any]]:
    return [
        o
        for o in template(*args)
        if o["metadata"]["name"].endswith("-api")
        or o["metadata"]["name"] in ("kt-kubetune-api-catalog", "kubetune-files")
    ]


def test_the_openai_api_is_off_by_default() -> None:
    assert openai_api_objects() == []


def test_the_openai_api_component_is_valid_and_least_privilege() -> None:
    catalog = REPO / "examples" / "openai-api" / "catalog.yaml"
    models = yaml.safe_load(catalog.read_text())["models"]
    objs = openai_api_objects(
        "--set", "openaiApi.enabled=true", "--set-json", f"openaiApi.models={json.dumps(models)}"
    )
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
    ]
    for obj in objs:
        kubernetes_validate.validate(obj, "1.35.0", strict=True)
    by_kind = {o["kind"]: o for o in objs}
    # It reviews tokens and access and watches jobs; it changes nothing (callers' tokens do).
    assert by_kind["ClusterRole"]["rules"] == [
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["tokenreviews"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["subjectaccessreviews"],
            "verbs": ["create"],
        },
        {"apiGroups": ["kubetune.io"], "resources": ["finetunejobs"], "verbs": ["list", "watch"]},
    ]
    assert yaml.safe_load(by_kind["ConfigMap"]["data"]["catalog.yaml"]) == {"models": models}
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["kubetune", "api"]
    assert "--files-claim=kubetune-files" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == "kt-kubetune-api"
    selector = by_kind["Service"]["spec"]["selector"]
    assert selector == by_kind["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert all(o["metadata"]["labels"]["app.kubernetes.io/component"] == "openai-api" for o in objs)
    with pytest.raises(subprocess.CalledProcessError):  # the schema refuses unknown methods
        template(
            "--set",
            "openaiApi.enabled=true",
            "--set-json",
            'openaiApi.models={"m": {"methods": ["grpo"], "spec": {}}}',
        )


def test_the_openai_api_keeps_files_in_a_bucket_when_told() -> None:
    """`openaiApi.files.s3.uri`: no claim, no files volume; the bucket's flags, and the API's
    keys from a Secret as secretKeyRefs (never values)."""
    objs = openai_api_objects(
        *("--set", "openaiApi.enabled=true"),
        *("--set", "openaiApi.files.s3.uri=s3://kubetune-files/api/"),
        *("--set", "openaiApi.files.s3.endpoint=https://minio.storage.svc:9000"),
        *("--set", "openaiApi.files.s3.pathStyle=true"),
        *("--set", "openaiApi.files.s3.credentialsSecret=api-s3"),
        *("--set", "openaiApi.files.s3.jobCredentialsSecret=job-s3"),
    )
    assert "PersistentVolumeClaim" not in {o["kind"] for o in objs}
    for obj in objs:
        kubernetes_validate.validate(obj, "1.35.0", strict=True)
    pod = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert [a for a in container["args"] if a.startswith("--files")] == [
        "--files-s3=s3://kubetune-files/api/",
        "--files-s3-endpoint=https://minio.storage.svc:9000",
        "--files-s3-path-style",
        "--files-s3-secret=job-s3",
    ]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]} == {
        "AWS_ACCESS_KEY_ID": {"name": "api-s3", "key": "AWS_ACCESS_KEY_ID"},
        "AWS_SECRET_ACCESS_KEY": {"name": "api-s3", "key": "AWS_SECRET_ACCESS_KEY"},
    }
    assert "files" not in {v["name"] for v in pod["volumes"]}
