"""Least privilege for the trainer's progress reporter.

Rank 0 patches the status of its own FineTuneJob and nothing else. Two parts, one write each
per job besides the ServiceAccount:

- RBAC: one ClusterRole shipped with the chart (`patch` on `finetunejobs/status`, nothing
  else, not even `get`), bound per job by a RoleBinding to the job's ServiceAccount. A
  RoleBinding grants a ClusterRole's rules in its own namespace only.
- Admission: a ValidatingAdmissionPolicy, also shipped with the chart, narrows that to the one
  job. A reporter ServiceAccount is named `<job>.kubetune-reporter`; FineTuneJob names are
  DNS-1035 labels (no dots), so the name maps to exactly one job of its namespace, and the
  policy refuses any write to a FineTuneJob by such an account whose username is not
  `system:serviceaccount:<namespace>:<name>.kubetune-reporter`.
"""

from __future__ import annotations

from kubetune.api.job import FineTuneJob
from kubetune.render.metadata import Obj, object_meta
from kubetune.render.names import REPORTER_SUFFIX, service_account_name
from kubetune.yamlio import dump_all
from kubetune_api.resource import GROUP, PLURAL

REPORTER = "kubetune-reporter"
"""The name of the cluster-wide ClusterRole, policy and policy binding."""
SERVICE_ACCOUNT_USER = "system:serviceaccount:"
_STATIC_LABELS = {"app.kubernetes.io/name": "kubetune", "app.kubernetes.io/part-of": "kubetune"}


def render_rbac(job: FineTuneJob) -> list[Obj]:
    name = service_account_name(job.name)
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(job, name, "reporter"),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_meta(job, name, "reporter"),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": REPORTER,
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": job.namespace}],
    }
    return [account, binding]


def reporter_access() -> list[Obj]:
    """The cluster-wide objects every job's reporter relies on: the ClusterRole its RoleBinding
    names, and the admission policy (with its binding) that keeps it to its own job."""
    user = "request.userInfo.username"
    own = f"'{SERVICE_ACCOUNT_USER}' + request.namespace + ':' + request.name + '{REPORTER_SUFFIX}'"
    own_job = (
        f"{user}.substring({len(SERVICE_ACCOUNT_USER)}).replace(':', '/')"
        f".replace('{REPORTER_SUFFIX}', '')"
    )
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": REPORTER, "labels": dict(_STATIC_LABELS)},
        "rules": [{"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["patch"]}],
    }
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": REPORTER, "labels": dict(_STATIC_LABELS)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "resources": [PLURAL, f"{PLURAL}/*"],
                        "operations": ["CREATE", "UPDATE", "DELETE"],
                    }
                ]
            },
            # Only the reporters' own accounts: everyone else (users, the operator) is
            # governed by RBAC alone.
            "matchConditions": [
                {
                    "name": "is-a-kubetune-reporter",
                    "expression": f"{user}.startsWith('{SERVICE_ACCOUNT_USER}') && "
                    f"{user}.endsWith('{REPORTER_SUFFIX}')",
                }
            ],
            "validations": [
                {
                    "expression": f"{user} == {own}",
                    "messageExpression": f"'kubetune: ' + {user} + ' reports for FineTuneJob ' + "
                    f"{own_job} + ' and may write no other; refused: ' + request.namespace + "
                    "'/' + request.name",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": REPORTER, "labels": dict(_STATIC_LABELS)},
        "spec": {"policyName": REPORTER, "validationActions": ["Deny"]},
    }
    return [role, policy, binding]


def reporter_access_chart_template() -> str:
    """`reporter_access()` as the chart's template: kept on uninstall with the CRD
    (`crds.keep`), because the jobs that outlive the operator keep reporting."""
    keep = (
        "metadata:\n"
        "  {{- if .Values.crds.keep }}\n"
        "  annotations:\n"
        "    helm.sh/resource-policy: keep\n"
        "  {{- end }}\n"
    )
    body = dump_all(reporter_access()).replace("metadata:\n", keep)
    return (
        "{{- /* Generated by hack/reporter-access.py from kubetune.render.rbac; do not edit. */"
        " -}}\n" + body
    )
