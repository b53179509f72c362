"""s3:// sources and outputs in what the operator renders: credentials only as secretKeyRef
variables, CA bundles mounted read-only, connections resolved per location, nothing secret in
the trainer config. (The bad-input table covers admission; tests/cluster/test_object_store.py
and tests/e2e/test_object_storage.py run the real S3 server.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from kubetune.api import parse_job
from kubetune.render import render
from kubetune.render.settings import RenderSettings
from kubetune.runtime.observe import expected_outputs
from kubetune_api.config import TrainerConfig
from kubetune_api.s3_spec import S3Location, s3_locations, s3_problem
from tests.support.factories import make_job
from tests.support.golden import by_kind

JOB_S3 = {
    "endpoint": "https://minio.storage.svc:9000",
    "region": "us-east-1",
    "pathStyle": True,
    "caBundle": {"name": "storage-ca"},
    "credentials": {"name": "s3-job", "sessionTokenKey": "token"},
}
OWN_S3 = {"endpoint": "https://other:9000", "credentials": {"name": "s3-model"}}


def s3_job(**extra: Any) -> dict[str, Any]:
    return make_job(
        **{
            "spec.s3": JOB_S3,
            "spec.model.source": "s3://models/llama/",
            "spec.model.s3": OWN_S3,
            "spec.dataset.sources[0].source": "s3://data/chat.jsonl",
            "spec.dataset.validation": {"source": "s3://data/eval.jsonl"},
            "spec.output.uri": "s3://runs/job-1",
            **extra,
        }
    )


def rendered(doc: dict[str, Any]) -> tuple[dict[str, Any], TrainerConfig]:
    objs = render(parse_job(doc))
    pod = by_kind(objs, "PyTorchJob")[0]["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    config_map = by_kind(objs, "ConfigMap")[0]
    config = TrainerConfig.model_validate(yaml.safe_load(config_map["data"]["trainer.yaml"]))
    return pod["spec"], config


def test_credentials_reach_both_containers_only_as_secret_key_refs() -> None:
    spec, _ = rendered(s3_job())
    for container in [*spec["initContainers"], *spec["containers"]]:
        env = {e["name"]: e for e in container["env"] if e["name"].startswith("KUBETUNE_S3")}
        refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items()}
        assert all("value" not in e for e in env.values()), env
        assert refs == {
            "KUBETUNE_S3_ACCESS_KEY_ID": {"name": "s3-job", "key": "AWS_ACCESS_KEY_ID"},
            "KUBETUNE_S3_SECRET_ACCESS_KEY": {"name": "s3-job", "key": "AWS_SECRET_ACCESS_KEY"},
            "KUBETUNE_S3_SESSION_TOKEN": {"name": "s3-job", "key": "token"},
            "KUBETUNE_S3_MODEL_ACCESS_KEY_ID": {"name": "s3-model", "key": "AWS_ACCESS_KEY_ID"},
            "KUBETUNE_S3_MODEL_SECRET_ACCESS_KEY": {
                "name": "s3-model",
                "key": "AWS_SECRET_ACCESS_KEY",
            },
        }


def test_the_ca_bundle_is_mounted_read_only_where_the_trainer_looks() -> None:
    spec, _ = rendered(s3_job())
    volume = next(v for v in spec["volumes"] if v["name"] == "s3-ca-0")
    assert volume == {"name": "s3-ca-0", "configMap": {"name": "storage-ca"}}
    for container in [*spec["initContainers"], *spec["containers"]]:
        mount = next(m for m in container["volumeMounts"] if m["name"] == "s3-ca-0")
        assert mount == {
            "name": "s3-ca-0",
            "mountPath": "/etc/kubetune/s3-ca/storage-ca",
            "readOnly": True,
        }


def test_each_location_uses_its_own_connection_else_the_jobs() -> None:
    _, config = rendered(s3_job())
    found = {w.field: w for w in s3_locations(config)}
    assert list(found) == [
        "model.source",
        "dataset.sources[0].source",
        "dataset.validation.source",
        "output.uri",
    ]
    assert found["model.source"].connection.endpoint == "https://other:9000"
    assert found["model.source"].env and found["model.source"].env.prefix == "KUBETUNE_S3_MODEL"
    for field in ("dataset.sources[0].source", "dataset.validation.source", "output.uri"):
        assert found[field].connection.endpoint == JOB_S3["endpoint"]
        env = found[field].env
        assert env and env.prefix == "KUBETUNE_S3"
    assert config.paths.model is None and config.paths.datasets == [None, None]


def test_no_credentials_means_the_sdk_default_chain_and_no_variables() -> None:
    doc = make_job(**{"spec.model.source": "s3://models/llama", "spec.s3": {"region": "eu-west-1"}})
    spec, config = rendered(doc)
    (where,) = s3_locations(config)
    assert where.env is None and where.connection.region == "eu-west-1"
    names = [e["name"] for e in spec["containers"][0]["env"]]
    assert not [n for n in names if n.startswith("KUBETUNE_S3")]
    assert not [v for v in spec["volumes"] if v["name"].startswith("s3-ca")]


def test_the_trainer_config_names_secrets_but_holds_no_values() -> None:
    _, config = rendered(s3_job())
    text = json.dumps(config.to_wire())
    assert '"credentials": {"name": "s3-job"' in text
    assert 'secretAccessKey"' not in text.replace("secretAccessKeyKey", "")


def test_status_says_where_the_outputs_were_uploaded() -> None:
    outputs = expected_outputs(parse_job(s3_job()), RenderSettings())
    assert outputs["uri"] == "s3://runs/job-1/"
    assert outputs["uriManifest"] == "s3://runs/job-1/manifest.json"
    assert "uri" not in expected_outputs(parse_job(make_job()), RenderSettings())


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://my-models/llama-3/", None),
        ("s3://my.models.v2/a..b/c", None),  # `..` inside a key segment is a plain name
        ("s3://my-runs/", None),
        ("s3://My-Models/x", "3-63"),
        ("s3://a/x", "3-63"),
        ("s3://" + "a" * 64 + "/x", "3-63"),
        ("s3://-models/x", "3-63"),
        ("s3://my..models/x", "adjacent periods"),
        ("s3://10.0.0.1/x", "IP address"),
        ("s3://sthree-data/x", "sthree-"),
        ("s3://amzn-s3-demo-bucket/x", "amzn-s3-demo-"),
        ("s3://data--x-s3/x", "--x-s3"),
        ("s3://data.mrap", ".mrap"),
        ("s3://data/../x", "`..`"),
        ("s3://data/a/..", "`..`"),
        ("s3://data/a/./b", "`.` segment"),
        ("s3://data/a//b", "empty"),
        ("s3://data/x#frag", "fragment"),
    ],
)
def test_s3_uri_rules(uri: str, problem: str | None) -> None:
    found = s3_problem(uri)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_locations_parse_into_bucket_and_key() -> None:
    assert S3Location.parse("s3://data/a/b.jsonl") == S3Location("data", "a/b.jsonl")
    assert S3Location.parse("s3://data") == S3Location("data", "")
    assert str(S3Location("data", "a/")) == "s3://data/a/"
