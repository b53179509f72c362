"""What the pods need for a job's s3:// locations: each connection's credentials as secretKeyRef
environment variables (never values), and each CA bundle ConfigMap mounted read-only. The
locations are the spec's, and the outputs of the stage it starts from (`upstream`)."""

from __future__ import annotations

from kubetune.api.job import FineTuneJob
from kubetune.render.metadata import Obj
from kubetune_api.s3_spec import (
    CA_MOUNT_ROOT,
    Located,
    UpstreamOutputs,
    s3_locations,
    upstream_location,
)


def locations(job: FineTuneJob, upstream: UpstreamOutputs | None) -> list[Located]:
    return [*s3_locations(job.spec), *([upstream_location(upstream)] if upstream else [])]


def s3_env(job: FineTuneJob, upstream: UpstreamOutputs | None = None) -> list[Obj]:
    """`<prefix>_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY` (and `_SESSION_TOKEN`) per connection with
    credentials; the trainer reads them by the same names (s3_spec.CredentialEnv)."""
    env: list[Obj] = []
    seen: set[str] = set()
    for where in locations(job, upstream):
        creds = where.connection.credentials
        if where.env is None or creds is None or where.env.prefix in seen:
            continue
        seen.add(where.env.prefix)
        keys = [
            (where.env.access_key_id, creds.accessKeyIdKey),
            (where.env.secret_access_key, creds.secretAccessKeyKey),
        ]
        if creds.sessionTokenKey:
            keys.append((where.env.session_token, creds.sessionTokenKey))
        for name, key in keys:
            ref = {"name": creds.name, "key": key}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def s3_ca_volumes(
    job: FineTuneJob, upstream: UpstreamOutputs | None = None
) -> tuple[list[Obj], list[Obj]]:
    """One ConfigMap volume per CA bundle ConfigMap, mounted at <CA_MOUNT_ROOT>/<name>."""
    names = sorted(
        {w.connection.caBundle.name for w in locations(job, upstream) if w.connection.caBundle}
    )
    volumes = [{"name": f"s3-ca-{i}", "configMap": {"name": n}} for i, n in enumerate(names)]
    mounts = [
        {"name": f"s3-ca-{i}", "mountPath": f"{CA_MOUNT_ROOT}/{n}", "readOnly": True}
        for i, n in enumerate(names)
    ]
    return volumes, mounts
