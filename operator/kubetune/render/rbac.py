"""Least privilege for the trainer's progress reporter.

Rank 0 patches the status of its own FineTuneJob and nothing else: a Role scoped by
resourceNames to that one object's `status` subresource, bound to a per-job ServiceAccount.
"""

from __future__ import annotations

from kubetune.api.job import FineTuneJob
from kubetune.render.metadata import Obj, object_meta
from kubetune.render.names import service_account_name
from kubetune_api.resource import GROUP, PLURAL


def render_rbac(job: FineTuneJob) -> list[Obj]:
    name = service_account_name(job.name)
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(job, name, "reporter"),
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": object_meta(job, name, "reporter"),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [job.name],
                "verbs": ["get", "patch"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_meta(job, name, "reporter"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": job.namespace}],
    }
    return [account, role, binding]
