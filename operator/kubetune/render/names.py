"""Deterministic child names, so a restarted operator finds what it created.

Every name is a DNS-1035 label of at most 63 characters. When `<job>-<suffix>` would be too
long, the job part is cut and an 8-character hash of the full job name keeps it unique.
The reporter's ServiceAccount is the exception: `<job>.kubetune-reporter` in full (a DNS
subdomain, as ServiceAccount names are), so that an admission rule can map it back to exactly
its job (render/rbac.py).
"""

from __future__ import annotations

import hashlib

MAX_LABEL = 63
# The training-operator names pods and services `<pytorchjob>-worker-<index>`; leave room.
MAX_PYTORCHJOB = MAX_LABEL - len("-worker-") - 4


def child_name(job: str, suffix: str = "", limit: int = MAX_LABEL) -> str:
    tail = f"-{suffix}" if suffix else ""
    name = f"{job}{tail}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    head = job[: limit - len(tail) - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}{tail}"


def pytorchjob_name(job: str) -> str:
    return child_name(job, limit=MAX_PYTORCHJOB)


def workspace_claim_name(job: str) -> str:
    return child_name(job, "workspace")


def config_map_name(job: str) -> str:
    return child_name(job, "trainer-config")


REPORTER_SUFFIX = ".kubetune-reporter"


def service_account_name(job: str) -> str:
    """Never cut: FineTuneJob names are DNS-1035 labels of at most 63 characters (the CRD's
    rule), so this is at most 81, and only the reporter of `job` is named so."""
    return f"{job}{REPORTER_SUFFIX}"
