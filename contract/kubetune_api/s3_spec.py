"""`s3://bucket/key` locations and the connection to an S3-compatible server: the API models and
the naming rules, torch- and boto3-free (the operator embeds them; `object_store.py` uses them).

Every rule is a regex over the whole `s3://…` string, written for both RE2 (the API server's CEL
`matches()`) and Python's `re`, so `kubetune.api.external_rules` turns each into a CEL rule with
its Python twin and both refuse the same URIs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from kubetune_api.k8s_syntax import ConfigMapKey, DNSSubdomain
from kubetune_api.schema import Model

SCHEME = "s3://"
# The shape every s3:// source and output must have; the naming rules below refine the bucket.
S3_URI = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?"

# (regex that must NOT match, what it breaks). S3's rules for general purpose bucket names
# (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html), then the key's.
S3_REFUSED: tuple[tuple[str, str], ...] = (
    (r"^s3://[^/]*\.\.", "a bucket name has no two adjacent periods"),
    (r"^s3://[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(/|$)", "a bucket name is not an IP address"),
    (
        r"^s3://(xn--|sthree-|amzn-s3-demo-)",
        "a bucket name does not start with xn--, sthree- or amzn-s3-demo-",
    ),
    (
        r"^s3://[^/]*(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)(/|$)",
        "a bucket name does not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3",
    ),
    (r"^s3://[^/]+/(.*/)?\.\.(/|$)", "a key has no `..` segment (it would leave its prefix)"),
    (r"^s3://[^/]+/(.*/)?(\.?/|\.$)", "a key has no empty or `.` segment"),
    (r"[?#]", "an s3:// URI has no query or fragment (presigned URLs carry credentials)"),
)
S3_RULE_MESSAGE = (
    "not a valid s3:// URI: s3://bucket/key, the bucket 3-63 characters of a-z, 0-9, `.` and `-`, "
    "starting and ending with a letter or digit, no `..`, not an IP address, none of S3's "
    "reserved prefixes and suffixes; the key without `..`, empty or `.` segments; no query (?) "
    "or fragment (#)"
)


def s3_problem(uri: str) -> str | None:
    """What is wrong with an s3:// URI, or None; the Python twin of the CEL rules."""
    if not re.fullmatch(S3_URI, uri):
        return "expected s3://bucket/key with a bucket of 3-63 characters of a-z, 0-9, . and -"
    for pattern, problem in S3_REFUSED:
        if re.search(pattern, uri):
            return problem
    return None


def s3_cel(var: str) -> str:
    """CEL that holds when `var` (a string) is not s3:// or is a valid s3:// URI."""
    refused = " && ".join(f"!{var}.matches(r'{p}')" for p, _ in S3_REFUSED)
    return f"!{var}.startsWith('{SCHEME}') || ({var}.matches(r'^{S3_URI}$') && {refused})"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str
    """The key or prefix, without a leading `/` (may be empty: the whole bucket)."""

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        bucket, _, key = uri.removeprefix(SCHEME).partition("/")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


class S3Credentials(Model):
    """A Secret holding S3 credentials. Its values reach the pods only as secretKeyRef
    environment variables; they never enter the trainer config, the status or the logs."""

    name: DNSSubdomain
    """Name of the Secret, in the job's namespace."""
    accessKeyIdKey: ConfigMapKey = "AWS_ACCESS_KEY_ID"
    """Key of the access key id in the Secret."""
    secretAccessKeyKey: ConfigMapKey = "AWS_SECRET_ACCESS_KEY"
    """Key of the secret access key in the Secret."""
    sessionTokenKey: ConfigMapKey | None = None
    """Key of a session token (temporary credentials), if the Secret has one."""


class CABundleRef(Model):
    """A ConfigMap key holding PEM certificates that the S3 endpoint's TLS certificate chains to
    (an on-premises MinIO or Ceph with a private CA)."""

    name: DNSSubdomain
    """Name of the ConfigMap, in the job's namespace."""
    key: ConfigMapKey = "ca.crt"
    """Key of the PEM bundle in it."""


class S3Connection(Model):
    """How to reach an S3-compatible server. Unset: AWS S3 with the SDK's defaults."""

    endpoint: str | None = Field(
        default=None, pattern=r"^https?://[^/@?#\s]+(/[^@?#\s]*)?$", max_length=2048
    )
    """Endpoint URL of an S3-compatible server (MinIO, Ceph RGW, SeaweedFS, GCS's XML API),
    e.g. `https://minio.storage.svc:9000`. Unset: AWS S3 for `region`. No user or password in it:
    credentials come from `credentials` only."""
    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    """Region for request signing, e.g. `eu-west-1` (S3-compatible servers mostly accept
    `us-east-1`). Unset: the SDK's default (AWS_REGION, the instance's region)."""
    pathStyle: bool = False
    """Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key` (most
    on-premises servers need it)."""
    caBundle: CABundleRef | None = None
    """Private CA certificates to trust for the endpoint, from a ConfigMap mounted into the pods.
    Unset: the image's system CAs."""
    credentials: S3Credentials | None = None
    """Secret with the access key id and secret key (and optionally a session token). Unset: the
    SDK's default chain, e.g. IRSA, EKS Pod Identity or GKE workload identity through the job's
    ServiceAccount."""


class UpstreamOutputs(Model):
    """Where the stage a job starts from (`model.fromJob`, artifact `final`) uploaded its outputs:
    its `status.outputs.uri`, with the connection it uploaded them with (its `output.s3`, else
    its `s3`). The operator sets it once that stage succeeded; the trainer reads it when the
    stage's output is not on this job's volume."""

    uri: str = Field(pattern=r"^s3://[^/]+(/.*)?$", max_length=2048)
    """The stage's output prefix, e.g. `s3://runs/tiny-sft/`."""
    s3: S3Connection = Field(default_factory=S3Connection)
    """The connection to read it with."""


@dataclass(frozen=True)
class CredentialEnv:
    """The environment variable names one connection's credentials reach the pods under."""

    prefix: str

    @property
    def access_key_id(self) -> str:
        return f"{self.prefix}_ACCESS_KEY_ID"

    @property
    def secret_access_key(self) -> str:
        return f"{self.prefix}_SECRET_ACCESS_KEY"

    @property
    def session_token(self) -> str:
        return f"{self.prefix}_SESSION_TOKEN"


JOB_ENV = CredentialEnv("KUBETUNE_S3")
MODEL_ENV = CredentialEnv("KUBETUNE_S3_MODEL")
OUTPUT_ENV = CredentialEnv("KUBETUNE_S3_OUTPUT")
UPSTREAM_ENV = CredentialEnv("KUBETUNE_S3_UPSTREAM")
CA_MOUNT_ROOT = "/etc/kubetune/s3-ca"
"""Where a CA bundle ConfigMap is mounted: `<root>/<configmap name>/<key>`."""


def dataset_env(index: int) -> CredentialEnv:
    return CredentialEnv(f"KUBETUNE_S3_DATASET_{index}")


def ca_bundle_path(ref: CABundleRef) -> str:
    return f"{CA_MOUNT_ROOT}/{ref.name}/{ref.key}"


@dataclass(frozen=True)
class Located:
    """One s3:// location of a job, with the connection it uses."""

    field: str
    """The spec field that names it, e.g. `dataset.sources[1].source`."""
    uri: str
    connection: S3Connection
    """The location's own `s3`, else the job's, else the SDK's defaults (an empty one)."""
    env: CredentialEnv | None
    """Where its credentials are in the environment; None: the SDK's default chain."""


def s3_locations(spec: Any) -> list[Located]:
    """Every s3:// location of a FineTuneJob spec or a TrainerConfig (both have model, dataset,
    output and s3): the model, the dataset sources, the validation set, `output.uri`, then a
    TrainerConfig's `upstreamOutputs`."""
    job = spec.s3

    def located(field: str, uri: str, own: S3Connection | None, env: CredentialEnv) -> Located:
        conn = own or job or S3Connection()
        if own is None:
            env = JOB_ENV
        return Located(field, uri, conn, env if conn.credentials else None)

    out: list[Located] = []
    if spec.model.source and spec.model.source.startswith(SCHEME):
        out.append(located("model.source", spec.model.source, spec.model.s3, MODEL_ENV))
    if spec.dataset is not None:
        n = len(spec.dataset.sources)
        for i, source in enumerate(spec.dataset.all_sources):
            if source.source.startswith(SCHEME):
                field = f"dataset.sources[{i}].source" if i < n else "dataset.validation.source"
                out.append(located(field, source.source, source.s3, dataset_env(i)))
    if spec.output.uri:
        out.append(located("output.uri", spec.output.uri, spec.output.s3, OUTPUT_ENV))
    upstream = getattr(spec, "upstreamOutputs", None)  # a TrainerConfig's, set by the operator
    if upstream is not None:
        out.append(upstream_location(upstream))
    return out


def upstream_location(upstream: UpstreamOutputs) -> Located:
    """`model.fromJob`'s uploaded outputs, read with the stage's own connection."""
    conn = upstream.s3
    return Located("model.fromJob", upstream.uri, conn, UPSTREAM_ENV if conn.credentials else None)
